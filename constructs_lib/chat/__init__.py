"""The chat capability: signed-in users (a Cognito user pool) and their conversations' history."""
