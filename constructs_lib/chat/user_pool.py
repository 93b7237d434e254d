"""Signed-in users: a Cognito user pool where administrators create the users (self sign-up only when the stage
says so), a password policy, TOTP MFA per stage, threat protection on the Plus plan, and one app client for the
browser: no secret (a browser cannot keep one), SRP sign-in, and, when the stage names callback URLs, the
authorization code flow for the managed login page. Cognito cannot require PKCE on that flow: it verifies the
``code_verifier`` only when the authorization request carried a ``code_challenge``, so the page using the flow must
send one."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from constructs_lib.chat.settings import ChatConfig
from constructs_lib.foundation.keys import removal_policy
from constructs_lib.foundation.nag import acknowledge
from lambda_src.contracts.naming import APP_NAME

_MFA = {"off": cognito.Mfa.OFF, "optional": cognito.Mfa.OPTIONAL, "required": cognito.Mfa.REQUIRED}
_PLANS = {"essentials": cognito.FeaturePlan.ESSENTIALS, "plus": cognito.FeaturePlan.PLUS}
REFRESH_TOKEN_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class ChatUsersProps:
    settings: ChatConfig
    stage_name: str
    retain: bool


class ChatUsers(Construct):
    """Attributes: ``pool``, ``client`` (the browser's app client), ``domain`` (the managed login page's, or None)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ChatUsersProps) -> None:
        super().__init__(scope, construct_id)
        settings = props.settings
        plus = settings.feature_plan == "plus"
        self.pool = cognito.UserPool(
            self,
            "Pool",
            self_sign_up_enabled=settings.self_sign_up,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=settings.password_min_length,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(settings.temporary_password_days),
            ),
            mfa=_MFA[settings.mfa],
            # TOTP only: SMS needs an SNS role, a sandbox exit and per-message charges.
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True) if settings.mfa != "off" else None,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=_PLANS[settings.feature_plan],
            standard_threat_protection_mode=(cognito.StandardThreatProtectionMode.FULL_FUNCTION if plus else None),
            deletion_protection=props.retain,
            removal_policy=removal_policy(props.retain),
        )
        oauth = None
        if settings.callback_urls:
            oauth = cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=list(settings.callback_urls),
                logout_urls=list(settings.callback_urls),
            )
        self.client = self.pool.add_client(
            "WebClient",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=oauth,
            disable_o_auth=oauth is None,
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=cdk.Duration.minutes(settings.id_token_minutes),
            access_token_validity=cdk.Duration.minutes(settings.id_token_minutes),
            refresh_token_validity=cdk.Duration.days(REFRESH_TOKEN_DAYS),
        )
        self.domain: cognito.UserPoolDomain | None = None
        if oauth is not None:
            # Cognito domain prefixes are global per region: the account id keeps this one the stage's own.
            prefix = cdk.Fn.join("-", [f"{APP_NAME}-{props.stage_name}", cdk.Aws.ACCOUNT_ID])
            self.domain = self.pool.add_domain(
                "Login", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
            )
        if settings.mfa != "required":
            acknowledge(
                self.pool,
                f"The stage config makes MFA {settings.mfa} for this stage (required in prod): its users are the "
                "team's own test accounts, and each may still enable TOTP.",
                ["AwsSolutions-COG2"],
            )
        if not plus:
            acknowledge(
                self.pool,
                "The stage config picks the Essentials plan (free for the first 10,000 monthly active users) over "
                "Plus, whose threat protection is billed per active user; passwords still follow the policy.",
                ["AwsSolutions-COG8"],
            )
