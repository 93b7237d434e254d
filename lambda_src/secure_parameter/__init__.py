"""CloudFormation custom-resource provider that creates SSM SecureString parameters without the value
ever entering a template: the value is generated (or a placeholder is set) inside this function."""
