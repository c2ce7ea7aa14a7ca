import json, sys, boto3, botocore
from botocore.config import Config
# usage: sigv4-boto3-smoke.py HOST:PORT ACCOUNT.json  (the output of `signpost accounts create NAME --aws`)
d = json.load(open(sys.argv[2]))
url = "http://" + sys.argv[1]
def client(akid, secret, region="us-east-1"):
    return boto3.client("route53", endpoint_url=url, aws_access_key_id=akid, aws_secret_access_key=secret,
                        region_name=region, config=Config(retries={"max_attempts": 1}))
def call(name, c, op, **kw):
    try:
        getattr(c, op)(**kw); print(name, "OK?!")
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]; meta = e.response["ResponseMetadata"]
        print(name, meta["HTTPStatusCode"], err.get("Code"), "|", err.get("Message"), "| rid", meta.get("RequestId"))
good = client(d["accessKeyId"], d["secretAccessKey"])
call("valid list", good, "list_hosted_zones", MaxItems="5")
call("valid create", client(d["accessKeyId"], d["secretAccessKey"], "eu-west-1"), "create_hosted_zone", Name="example.com.", CallerReference="r1")
call("valid get rrsets", good, "list_resource_record_sets", HostedZoneId="Z1", StartRecordName="*.a b.example.")
call("wrong secret", client(d["accessKeyId"], "x"*40), "list_hosted_zones")
call("unknown key", client("AKIAAAAAAAAAAAAAAAAA", "x"*40), "list_hosted_zones")
