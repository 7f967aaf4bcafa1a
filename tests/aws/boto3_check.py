# Proves tests/fakes/fake_aws.mjs against Debian's python3-boto3: GetSecretValue through the fake over TLS (the
# test CA from AWS_CA_BUNDLE) with static, web-identity (STS) and IMDSv2 credentials, and botocore's typed errors.
# Usage (tests/integration/test_fake_aws.sh runs it): python3 tests/aws/boto3_check.py, configured by the environment.
import os
import sys

import boto3
import botocore.exceptions
from botocore.config import Config

E = os.environ
endpoint = "https://127.0.0.1:%s" % E["FAKE_AWS_PORT"]
name, value = E["FAKE_AWS_SECRET_NAME"], E["FAKE_AWS_SECRET_VALUE"]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
passed = failed = 0


def t(desc, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok - boto3: " + desc)
    except Exception as e:  # report and go on, as the other checks do
        failed += 1
        print("not ok - boto3: %s: %r" % (desc, e))


def client(**creds):
    return boto3.session.Session(**creds).client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint, config=cfg)


def static():
    r = client(aws_access_key_id=E["FAKE_AWS_AKID"], aws_secret_access_key=E["FAKE_AWS_SECRET_KEY"]).get_secret_value(SecretId=name)
    assert r["SecretString"] == value, r
    assert r["VersionStages"] == ["AWSCURRENT"], r
    assert r["ARN"].startswith("arn:aws:secretsmanager:us-east-1:"), r


def error(creds, want):
    def run():
        try:
            client(**creds).get_secret_value(SecretId=name if want != "ResourceNotFoundException" else "no-such")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == want, e.response
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
            return
        raise AssertionError("no error")
    return run


def imds():
    # an empty Session with no keys in the environment falls through botocore's chain to IMDS, which
    # AWS_EC2_METADATA_SERVICE_ENDPOINT points at the fake
    s = boto3.session.Session()
    creds = s.get_credentials()
    assert creds is not None and creds.method == "iam-role", creds and creds.method
    r = s.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint, config=cfg).get_secret_value(SecretId=name)
    assert r["SecretString"] == value, r


def web_identity():
    # botocore parses the fake's AssumeRoleWithWebIdentity XML; the credentials then sign GetSecretValue
    sts = boto3.session.Session().client("sts", region_name="us-east-1", endpoint_url=endpoint, config=cfg)
    with open(E["FAKE_AWS_WEB_TOKEN"]) as f:
        token = f.read()
    r = sts.assume_role_with_web_identity(RoleArn=E["FAKE_AWS_ROLE_ARN"], RoleSessionName="boto3", WebIdentityToken=token)
    c = r["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA"), c
    s = boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                              aws_session_token=c["SessionToken"])
    got = s.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint, config=cfg).get_secret_value(SecretId=name)
    assert got["SecretString"] == value, got


good = dict(aws_access_key_id=E["FAKE_AWS_AKID"], aws_secret_access_key=E["FAKE_AWS_SECRET_KEY"])
t("reads the secret with static credentials", static)
t("unknown secret is ResourceNotFoundException", error(good, "ResourceNotFoundException"))
t("wrong secret key is InvalidSignatureException", error(dict(good, aws_secret_access_key="wrong"), "InvalidSignatureException"))
t("unknown key id is UnrecognizedClientException", error(dict(good, aws_access_key_id="AKIANOTKNOWN00000000"), "UnrecognizedClientException"))
t("reads the secret with web-identity (STS) credentials", web_identity)
t("reads the secret with IMDSv2 instance-role credentials", imds)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
