"""The observability capability: the stage's alarms (to an encrypted SNS topic) and its CloudWatch dashboard, read
from the metrics the functions emit (lambda_src/contracts/metrics.py) and the AWS services' own."""
