"""The reference for the synth benchmark: one S3 bucket, default ``App()`` settings, same toolchain."""

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App()
stack = cdk.Stack(app, "Reference")
s3.Bucket(stack, "Bucket")
app.synth()
