"""Facts that infrastructure, functions, tools and tests share, as plain data (standard library only).

Each fact has one home here: the CDK constructs read it to build templates, the functions read it at run
time, the local platform and the tests read it to know what to expect. Nothing here imports the CDK, boto3
or Powertools (`make lint` enforces it), so any of them may import a contract without side effects.
"""
