//! The entry points a runtime crate offers, written once and named for its types: the
//! engine's generic functions cannot tell a runtime from a `TcpListener` or a closure, so
//! each runtime crate states its [`Runtime`](crate::Runtime) once, here, and its users call
//! `serve(listener, gate, …)` as before.

/// Defines a runtime crate's entry points over its [`Runtime`](crate::Runtime) `$rt`:
/// `gate`, `upgrade`, `serve`, `serve_websocket` and `serve_plain` (one job each: see the
/// README's "Which call" table), and [`PlainListener`](crate::PlainListener) for its TCP
/// and Unix-domain listeners. The crate defines `Gate`, `TlsStream` and `WebSocket` (its
/// names for the engine's types) and imports `Accepted`, `AcceptError` and `ServeOptions`.
#[macro_export]
macro_rules! entry_points {
    (
        runtime: $rt:ty,
        tcp: $tcp_listener:ty => $tcp:ty,
        unix: $unix_listener:ty => $unix:ty $(,)?
    ) => {
        /// The gate over a stream you set up yourself: plain TCP behind a proxy (header
        /// mode), or a TLS stream you accepted (pass its peer chain). The head is bounded by
        /// the limits.
        pub async fn gate<S>(
            auth: &$crate::certauth_core::Authenticator,
            io: S,
            peer_chain: &[$crate::certauth_core::CertificateDer<'_>],
            remote: ::std::option::Option<::std::net::IpAddr>,
        ) -> ::std::result::Result<Accepted<S>, AcceptError>
        where
            $rt: $crate::Compat<S>,
        {
            $crate::gate::<$rt, S>(auth, io, peer_chain, remote).await
        }

        /// Completes the WebSocket handshake for an accepted connection (writes the core's
        /// 101, or its 400/426 and closes), whatever its path.
        pub async fn upgrade<S>(
            accepted: Accepted<S>,
            config: $crate::WebSocketConfig,
        ) -> ::std::result::Result<
            (
                $crate::DrainingWebSocket<$crate::WebSocketStream<<$rt as $crate::Compat<S>>::Io>>,
                $crate::certauth_core::Authenticated,
            ),
            AcceptError,
        >
        where
            $rt: $crate::Compat<S>,
        {
            $crate::upgrade::<$rt, S>(accepted, config).await
        }

        /// Serves authenticated TLS clients: runs the connection lifecycle (admission,
        /// shedding, deadlines, drain: [`ServeOptions`]) and, for each client the gate lets
        /// in, `handler` in the connection's task. Rejected
        /// clients get the core's response and are logged (`tracing`, with the code).
        pub async fn serve<F, Fut>(
            listener: $tcp_listener,
            gate: Gate,
            options: ServeOptions,
            shutdown: impl ::std::future::Future<Output = ()>,
            handler: F,
        ) -> ::std::io::Result<()>
        where
            F: Fn(Accepted<TlsStream>) -> Fut + Send + Sync + 'static,
            Fut: ::std::future::Future<Output = ()> + Send + 'static,
        {
            $crate::serve(listener, gate, options, shutdown, handler).await
        }

        /// [`serve`] for WebSocket clients: each authenticated client runs `handler` with its
        /// WebSocket, which on shutdown is sent a 1001 close.
        pub async fn serve_websocket<F, Fut>(
            listener: $tcp_listener,
            gate: Gate,
            options: ServeOptions,
            shutdown: impl ::std::future::Future<Output = ()>,
            handler: F,
        ) -> ::std::io::Result<()>
        where
            F: Fn(WebSocket, $crate::certauth_core::Authenticated) -> Fut + Send + Sync + 'static,
            Fut: ::std::future::Future<Output = ()> + Send + 'static,
        {
            $crate::serve_websocket(listener, gate, options, shutdown, handler).await
        }

        /// [`serve`] for clients behind a TLS-terminating proxy (header mode): the
        /// certificate from the proxy's headers. `listener` is this runtime's TCP listener
        /// (the proxy's address is checked against the trusted proxies) or its Unix-domain
        /// listener for a proxy on the same host (nginx `proxy_pass
        /// http://unix:/run/app.sock:`): there the socket is the trust boundary, so the
        /// authenticator's proxy configuration must trust it
        /// ([`ProxyHeaderConfig::trust_unix_socket`](certauth_core::ProxyHeaderConfig::trust_unix_socket));
        /// make the socket file writable by the proxy alone.
        pub async fn serve_plain<L, F, Fut>(
            listener: L,
            auth: $crate::certauth_core::Authenticator,
            options: ServeOptions,
            shutdown: impl ::std::future::Future<Output = ()>,
            handler: F,
        ) -> ::std::io::Result<()>
        where
            L: $crate::PlainListener<$rt>,
            $rt: $crate::Compat<L::Io>,
            <$rt as $crate::Compat<L::Io>>::Io: Send,
            F: Fn(Accepted<L::Io>) -> Fut + Send + Sync + 'static,
            Fut: ::std::future::Future<Output = ()> + Send + 'static,
        {
            $crate::serve_plain::<$rt, L, _, _>(listener, auth, options, shutdown, handler).await
        }

        impl $crate::PlainListener<$rt> for $tcp_listener {
            type Io = $tcp;
            async fn accept_plain(&self) -> ::std::io::Result<($tcp, $crate::PlainPeer)> {
                let (io, addr) = <$rt as $crate::Runtime>::accept_tcp(self).await?;
                Ok((io, $crate::PlainPeer::Tcp(addr)))
            }
        }

        impl $crate::PlainListener<$rt> for $unix_listener {
            type Io = $unix;
            async fn accept_plain(&self) -> ::std::io::Result<($unix, $crate::PlainPeer)> {
                let io = <$rt as $crate::Runtime>::accept_unix(self).await?;
                Ok((io, $crate::PlainPeer::Unix))
            }
        }
    };
}
