#!/usr/bin/env python3
"""How `openssl verify` (the library Node links) judges each x509-limbo case, for
docs/CONFORMANCE.md: run from the repository root, prints how many agree with the
expected result. SERVER cases use -purpose sslserver and the peer name; CLIENT cases
-purpose sslclient; CRLs with -crl_check."""
import json, subprocess, tempfile, os, datetime, sys
d=json.load(open('tests/data/x509-limbo/limbo.json'))
out={}
for c in d['testcases']:
    with tempfile.TemporaryDirectory() as t:
        w=lambda n,s: open(os.path.join(t,n),'w').write(s)
        w('ca.pem',''.join(c['trusted_certs']))
        w('int.pem',''.join(c['untrusted_intermediates']))
        w('leaf.pem',c['peer_certificate'])
        args=['openssl','verify','-CAfile',os.path.join(t,'ca.pem')]
        if c['untrusted_intermediates']:
            args+=['-untrusted',os.path.join(t,'int.pem')]
        if c.get('crls'):
            w('crl.pem',''.join(c['crls'])); args+=['-CRLfile',os.path.join(t,'crl.pem'),'-crl_check']
        args+=['-purpose','sslserver' if c['validation_kind']=='SERVER' else 'sslclient']
        if c.get('validation_time'):
            ts=int(datetime.datetime.fromisoformat(c['validation_time']).timestamp()); args+=['-attime',str(ts)]
        pn=c.get('expected_peer_name')
        if c['validation_kind']=='SERVER' and pn:
            if pn['kind']=='DNS': args+=['-verify_hostname',pn['value']]
            elif pn['kind']=='IP': args+=['-verify_ip',pn['value']]
        if c.get('max_chain_depth') is not None: args+=['-verify_depth',str(c['max_chain_depth']+1)]
        args.append(os.path.join(t,'leaf.pem'))
        r=subprocess.run(args,capture_output=True,text=True)
        ok = r.returncode==0 and ': OK' in r.stdout
        err = '' if ok else ' '.join((r.stdout+r.stderr).split())[-160:]
        out[c['id']]={'ok':ok,'err':err}
pass
print(sum(v['ok']==(c['expected_result']=='SUCCESS') for c in d['testcases'] for v in [out[c['id']]]), 'of', len(d['testcases']), 'agree with limbo')
