"""Code every function may use, bundled into every function asset: the OpenAI error shape, request
validation, the configuration source, the audit writer and the model adapters. CDK-free."""
