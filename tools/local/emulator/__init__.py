"""The AWS emulator behind `make local`: moto's server on 127.0.0.1 with the gaps it has closed.

    .venv-local/bin/python -m tools.local.emulator --port 5000

moto 5.2.5 deploys CloudFormation templates, but not these ones as they are. The templates are deployed
unchanged; the emulator is adjusted instead, one module per service, and nothing here runs outside the
local targets:

- kms, ssm: tagged `AWS::KMS::Key` and `AWS::SSM::Parameter` fail (CloudFormation's tag shapes reach
  backends that expect another): the tags are converted;
- awslambda: functions only run in Docker: Python functions run on the host with tools/local/runtime.py
  (the deployed code and layers, which moto's CloudFormation drops and this module keeps, the function's own
  environment, AWS_ENDPOINT_URL pointing back here), in execution environments kept warm between invocations,
  with Lambda's errorType on a failure; CDK's own Node.js providers (S3 auto-delete in dev) are answered
  SUCCESS unrun, as they only act on deletion;
- cloudformation: custom resources are told to answer at http://host.docker.internal: 127.0.0.1 instead;
  and the helper that teaches moto's CloudFormation a resource type through a service backend;
- firehose: `AWS::KinesisFirehose::DeliveryStream` is not modelled;
- apigateway: `Authorizer`, `Stage` and `UsagePlan` are not modelled, and `Method` drops its authorizer
  and fails on MOCK integrations;
- s3vectors: `AWS::S3Vectors::VectorBucket` and `Index` are not modelled, and QueryVectors is missing;
- bedrock: `AWS::Bedrock::Guardrail` and `GuardrailVersion` are not modelled, and ApplyGuardrail and the guardrail
  calls of the control plane are missing (a local stand-in evaluates words, regexes and pattern-found PII; the
  policies that need a model are not evaluated);
- secretsmanager: `AWS::SecretsManager::Secret` is not modelled (values generated as CloudFormation does);
- stepfunctions: state machines made by CloudFormation never run (moto interprets ASL in another backend);
- cloudfront: `AWS::CloudFront::Distribution` and its function, headers policy and origin access control are
  not modelled (nothing serves them: the local edge, tools/local/edge.py, serves the site bucket);
- s3deployment: CDK's BucketDeployment handler runs its AWS CLI from a Lambda layer at /opt/awscli: its own
  code runs on the host with the two CLI commands it uses (`s3 cp`, `s3 sync`) done by boto3;
- cognito: `AWS::Cognito::UserPool`, `UserPoolClient` and `UserPoolDomain` are not modelled, and moto's SRP
  sign-in accepts any password: the server side of Cognito's SRP runs for real;
- dynamodb: a conditional write or a transaction is not atomic under concurrent requests (and a cancelled
  transaction restores a copy of the whole table): the backend's writes run one at a time, as the budgets need.
- cloudwatch: `AWS::CloudWatch::Alarm` is not modelled (dashboards are): the monitoring stack's alarms are made
  through the backend, metric math included (nothing evaluates them locally); the functions' EMF lines reach its
  metrics as PutMetricData (tools/local/emf.py, CloudWatch Logs' part);
- sns: `AWS::SNS::TopicPolicy` and `AWS::SNS::Subscription` are not modelled (topics are): the alarm topic's policy
  and its email subscriptions (pending confirmation, as in AWS) are applied through the backend.

Still skipped (template assertions cover them): bucket policies, Glue, Athena, WAF, gateway responses,
request validators and models, log streams, the API Gateway account, EventBridge Scheduler schedules
(`python -m tools.knowledge sync` starts a run by hand).
"""

from __future__ import annotations

from tools.local.emulator import (
    apigateway,
    awslambda,
    bedrock,
    cloudformation,
    cloudfront,
    cloudwatch,
    cognito,
    dynamodb,
    firehose,
    kms,
    s3vectors,
    secretsmanager,
    sns,
    ssm,
    stepfunctions,
)


def install_patches(port: int) -> None:
    endpoint = f"http://localhost:{port}"
    cloudformation.install(port)
    kms.install()
    ssm.install()
    awslambda.install(endpoint)
    firehose.install()
    apigateway.install()
    s3vectors.install()
    bedrock.install()
    secretsmanager.install()
    stepfunctions.install()
    cognito.install()
    dynamodb.install()
    cloudfront.install()
    cloudwatch.install()
    sns.install()
