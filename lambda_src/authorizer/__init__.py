"""API Gateway TOKEN authorizer: validates `Authorization: Bearer <key>` against the key table."""
