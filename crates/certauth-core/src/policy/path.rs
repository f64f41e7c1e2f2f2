//! A policy for part of a site: [`for_path`] applies a policy to the requests under a path
//! prefix and lets every other request past it, so that `/admin` can be stricter than the
//! rest: `global.and(for_path("/admin", admins.deny_with_403())?)`, both must allow.

use super::*;

/// Applies `policy` to the requests whose path lies under `prefix`; allows every other
/// request. Use it with [`PolicyExt::and`] (both must allow), and usually with
/// [`PolicyExt::deny_with_403`] on `policy`: a verified client refused there is known, only
/// not allowed on that part of the site.
///
/// `prefix` matches whole segments, as the front door's `--open` prefixes do
/// (`forward::is_open_path`): `/admin` covers `/admin` and `/admin/users`, not `/adminx`; a
/// trailing `/` is ignored (`/admin/` is `/admin`), and `/` covers everything. Since this
/// policy makes a path stricter, every doubt applies it: letters compare in any case
/// (`/ADMIN` is `/admin` to a case-insensitive server), a format suffix is under its path
/// (`/admin.json`: Rails' `(.:format)`), so is a stream name on any segment
/// (`/admin::$INDEX_ALLOCATION/users` is `/admin/users` to IIS) and the path info after a
/// script's name (`/index.php/admin`: a PHP front controller's `/admin`), and a path a server behind could read as another
/// (a `%` escape, `;`, `\`, `~`, a byte outside ASCII, an empty segment or one ending in
/// `.`, or a target that is not a path: `*`, an absolute URI) is under every prefix.
///
/// The error names a prefix that could never be matched as written: not starting with `/`,
/// or holding what an ambiguous path holds, `?` or `#`.
pub fn for_path(
    prefix: &str,
    policy: impl Policy + 'static,
) -> Result<impl Policy + fmt::Debug + 'static, SetupError> {
    let invalid = |reason| SetupError::InvalidPathPrefix {
        value: prefix.to_owned(),
        reason,
    };
    if !prefix.starts_with('/') {
        return Err(invalid("it does not start with /"));
    }
    if prefix.contains(['?', '#']) {
        return Err(invalid("a path prefix has no query or fragment"));
    }
    if is_ambiguous(prefix) {
        return Err(invalid(
            "it holds a %-escape, ;, \\, ~, a byte outside ASCII, an empty segment or one \
             ending in ., which no request path is matched by",
        ));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(ForPath {
        prefix: trimmed.to_owned(),
        inner: Box::new(policy),
    })
}

struct ForPath {
    /// Without a trailing `/`: empty for `/`.
    prefix: String,
    inner: BoxPolicy,
}

impl fmt::Debug for ForPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForPath")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Policy for ForPath {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        if applies(&self.prefix, ctx.request.path()) {
            self.inner.evaluate(ctx)
        } else {
            Verdict::Allow
        }
    }
}

/// Whether a policy for `prefix` (no trailing `/`) applies to `path`: under it by whole
/// segments in any letter case, with a stream name on any of them (`/admin::$DATA`) or a
/// format suffix on the last (`/admin.json`), also as the path info after a script's name
/// (`/index.php/admin`); or ambiguous.
fn applies(prefix: &str, path: &str) -> bool {
    if !path.starts_with('/') || is_ambiguous(path) {
        return true;
    }
    let Some(prefix) = prefix.strip_prefix('/') else {
        // `/` (stored empty) covers everything.
        return true;
    };
    // A segment with a `.` may name a script that routes the rest of the path, its path
    // info: PHP front controllers (Symfony, Laravel) serve `/index.php/admin/users` as
    // `/admin/users`, CGI `/cgi-bin/tool.cgi/admin` as `/admin` (attack review s7, N4).
    let mut rest = Some(path);
    while let Some(from) = rest {
        if under(prefix, from) {
            return true;
        }
        rest = from
            .match_indices('/')
            .skip(1)
            .find(|(at, _)| {
                from[..*at]
                    .rsplit('/')
                    .next()
                    .is_some_and(|s| s.contains('.'))
            })
            .map(|(at, _)| &from[at..]);
    }
    false
}

/// Whether `path` (from its leading `/`) lies under `prefix` (without its leading `/`)
/// segment by segment.
fn under(prefix: &str, path: &str) -> bool {
    let mut segments = path.split('/').skip(1);
    let mut wanted = prefix.split('/').peekable();
    while let Some(want) = wanted.next() {
        let Some(segment) = segments.next() else {
            return false;
        };
        let (want, segment) = (want.as_bytes(), segment.as_bytes());
        let last = wanted.peek().is_none();
        let same = segment.len() >= want.len()
            && segment[..want.len()].eq_ignore_ascii_case(want)
            && match segment.get(want.len()) {
                None => true,
                // IIS and Windows servers read `admin::$INDEX_ALLOCATION` (an NTFS stream
                // name) as the directory `admin`, on any segment: `/admin::$DATA` and
                // `/admin::$INDEX_ALLOCATION/users` are `/admin` and `/admin/users`.
                Some(b':') => true,
                // `/admin.json`: Rails routes `/admin(.:format)` to `/admin`, and older
                // Spring matched any suffix.
                Some(b'.') => last,
                Some(_) => false,
            };
        if !same {
            return false;
        }
    }
    true
}

/// Whether a server behind could read `path` as another path: `%` (an encoded `/`, `.` or
/// `\` reads differently behind), `;` (Tomcat's `..;`), `\`, `~` (Windows short names,
/// `ADMINI~1`), a byte outside ASCII (`"/admın".toUpperCase()` is `/ADMIN` in Java, JS and
/// Python; fullwidth letters fold to ASCII under NFKC), an empty segment, or a segment
/// ending in `.` (`.` and `..`; Windows and IIS drop trailing dots: `/admin.` is `/admin`).
pub(crate) fn is_ambiguous(path: &str) -> bool {
    path.contains(['%', ';', '\\', '~'])
        || !path.is_ascii()
        || path.contains("//")
        || path.split('/').any(|s| s.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::ClientCertificate;

    fn verdict(policy: &impl Policy, cert: &ClientCertificate, target: &str) -> Option<u16> {
        let ctx = PolicyContext::new(cert, None, RequestInfo::new("GET", target));
        match policy.evaluate(&ctx) {
            Verdict::Allow => None,
            Verdict::Deny(d) => Some(d.status().code()),
        }
    }

    fn cert() -> ClientCertificate {
        let root = certauth_testkit::Authority::root("root");
        let issued = root.issue(&certauth_testkit::Leaf::client("someone"));
        ClientCertificate::from_der(&issued.der).unwrap()
    }

    #[test]
    fn applies_under_the_prefix_by_segment_and_to_every_ambiguous_path() {
        let refuse = |_: &PolicyContext<'_>| false;
        let admin = for_path("/admin/", refuse.deny_with_403()).unwrap();
        let cert = cert();
        for under in [
            "/admin",
            "/admin/",
            "/admin/users?x=1",
            "/ADMIN/users",
            "/Admin",
            "/admin/../x",
            "/x/../admin",
            "//admin",
            "/%61dmin",
            "/admin;x",
            "/x\\admin",
            "*",
            "http://app.example/admin",
            "/admin.",
            "/admin..",
            "/admin./",
            "/admin.json",
            "/admin:x",
            "/admin::$DATA",
            "/ADMIN::$INDEX_ALLOCATION/users",
            "/admin:$I30:$INDEX_ALLOCATION/users",
            "/admin~",
            "/ADMINI~1/x",
            "/adm\u{131}n",
            "/\u{ff41}dmin",
            "/admin\u{a0}",
        ] {
            assert_eq!(verdict(&admin, &cert, under), Some(403), "{under}");
        }
        for elsewhere in [
            "/",
            "/adminx",
            "/x/admin",
            "/public?to=/admin",
            "/ad",
            "/x.y/z",
            "/x/admin:x",
            "/v1/things:batchGet",
        ] {
            assert_eq!(verdict(&admin, &cert, elsewhere), None, "{elsewhere}");
        }
        let all = for_path("/", refuse).unwrap();
        assert_eq!(verdict(&all, &cert, "/anything"), Some(401));
        // Its Debug names the prefix as matched (for a configuration dump).
        assert!(
            format!("{admin:?}").contains(r#"prefix: "/admin""#),
            "{admin:?}"
        );
    }

    #[test]
    fn a_prefix_of_several_segments_matches_each_with_its_stream_names() {
        let refuse = |_: &PolicyContext<'_>| false;
        let users = for_path("/admin/users", refuse.deny_with_403()).unwrap();
        let cert = cert();
        // The attack review's bypass: a stream name on an inner segment (IIS reads
        // `admin::$INDEX_ALLOCATION` as the directory `admin`).
        for under in [
            "/admin/users",
            "/Admin/Users/x",
            "/admin::$INDEX_ALLOCATION/users",
            "/admin:$I30:$INDEX_ALLOCATION/users",
            "/admin/users::$DATA",
            "/admin/users.json",
            "/index.php/admin/users",
            "/app_dev.php/Admin/Users/x",
            "/cgi-bin/tool.cgi/admin/users",
            "/a.b/c.d/admin/users",
        ] {
            assert_eq!(verdict(&users, &cert, under), Some(403), "{under}");
        }
        for elsewhere in [
            "/admin",
            "/admin/",
            "/admin/usersx",
            "/adminx/users",
            "/admin.json/users",
            "/admin/other/users",
            "/users/admin",
            "/index.php/admin",
            "/index.php",
            "/index/admin/users",
            "/x.php",
        ] {
            assert_eq!(verdict(&users, &cert, elsewhere), None, "{elsewhere}");
        }
    }

    #[test]
    fn in_addition_to_the_global_policy_both_must_allow() {
        let cert = cert();
        let is_someone =
            |ctx: &PolicyContext<'_>| ctx.cert.common_name().as_deref() == Some("someone");
        let is_admin = |ctx: &PolicyContext<'_>| ctx.cert.common_name().as_deref() == Some("admin");
        let both = is_someone.and(for_path("/admin", is_admin.deny_with_403()).unwrap());
        assert_eq!(verdict(&both, &cert, "/app"), None);
        assert_eq!(verdict(&both, &cert, "/admin/x"), Some(403));
        let nobody = |_: &PolicyContext<'_>| false;
        let both = nobody.and(for_path("/admin", allow_any()).unwrap());
        assert_eq!(verdict(&both, &cert, "/admin/x"), Some(401));
    }

    #[test]
    fn a_prefix_no_path_could_match_is_refused() {
        for bad in [
            "admin", "", "/admin?x", "/a#b", "/a/../b", "/%61", "/a;b", "//a", "/a/./b", "/a.",
            "/~a", "/\u{e9}",
        ] {
            let err = for_path(bad, allow_any()).unwrap_err();
            assert!(matches!(err, SetupError::InvalidPathPrefix { .. }), "{bad}");
            assert!(err.to_string().contains("is not a path prefix"), "{err}");
        }
    }
}
