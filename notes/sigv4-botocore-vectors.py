import datetime
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
fixed = datetime.datetime(2026, 12, 2, 12, 0, 0)
reqs = [
 ("GET", "http://127.0.0.1:8080/2013-04-01/hostedzone?maxitems=10&marker=Z1%2FX&dnsname=example.com.", None, "us-east-1"),
 ("POST", "http://127.0.0.1:8080/2013-04-01/hostedzone", b'<?xml version="1.0" encoding="UTF-8"?>\n<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>example.com.</Name><CallerReference>ref-1</CallerReference></CreateHostedZoneRequest>', "eu-central-1"),
 ("GET", "http://127.0.0.1:8080/2013-04-01/hostedzone/Z123/rrset?name=%2A.example.com.&type=A&identifier=a%20b", None, "us-east-1"),
 ("GET", "http://127.0.0.1:8080/2013-04-01/healthcheck/a%3Ab%20c~d", None, "us-west-2"),
]
class DT(datetime.datetime):
    @classmethod
    def utcnow(cls): return fixed
    @classmethod
    def now(cls, tz=None): return fixed.replace(tzinfo=tz) if tz else fixed
for method, url, body, region in reqs:
    r = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "text/xml"} if body else {})
    with mock.patch("botocore.auth.datetime.datetime", DT):
        a = SigV4Auth(creds, "route53", region)
        a.add_auth(r)
        cr = a.canonical_request(r)
    p = r.prepare()
    print("==", method, p.url)
    for k, v in p.headers.items(): print(f"  {k}: {v}")
    print("  body:", body)
    print("  canonical:\n" + cr)
