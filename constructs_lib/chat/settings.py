"""The chat capability's part of the stage configuration (CDK-free): who may sign in and how, and how long and
how much history is kept."""

from __future__ import annotations

import re
from dataclasses import dataclass

from constructs_lib.foundation.settings import Check, Settings, whole
from lambda_src.contracts.spend import Limits, budget_problem

MFA_MODES = ("off", "optional", "required")
FEATURE_PLANS = ("essentials", "plus")
DEFAULT_USER_BUDGET = Limits(
    tokens_per_minute=20_000, tokens_per_day=100_000, tokens_per_month=1_000_000, cost_per_month_usd=10
)
# Where the managed login page may send a user back to (the web app): https, or http on this machine.
_CALLBACK = re.compile(
    r"^https://[A-Za-z0-9.-]+(?::\d+)?(?:/[^\s?#]*)?$|^http://(?:localhost|127\.0\.0\.1)(?::\d+)?/[^\s?#]*$"
)


@dataclass(frozen=True)
class ChatConfig(Settings):
    """Signed-in users (a Cognito user pool) and their conversations."""

    # Administrators create users (`python -m tools.users create`); True lets anyone with the app's URL sign up.
    self_sign_up: bool = False
    # TOTP (authenticator app) second factor: off, optional (each user may enable it) or required.
    mfa: str = "required"
    # Cognito's feature plan: plus (threat protection: compromised credentials, adaptive authentication;
    # billed per monthly active user, nothing at idle) or essentials.
    feature_plan: str = "plus"
    password_min_length: int = 14
    # Days a temporary password (printed once by `tools.users create`) stays valid.
    temporary_password_days: int = 3
    # Each message is kept this long after it was written; a conversation goes with its last message.
    history_retention_days: int = 365
    # Chunks of the knowledge base given to the model with each question, and earlier messages sent with it.
    retrieval_top_k: int = 5
    history_messages: int = 6
    # The managed login page's callback and sign-out URLs (the web app); empty: SRP sign-in only.
    callback_urls: tuple[str, ...] = ()
    # Minutes an ID token (what the API's Cognito authorizer accepts) stays valid; refresh tokens last 30 days.
    id_token_minutes: int = 60
    # Each signed-in user's token and cost limits across their conversations (None: no limit).
    user_budget: Limits = DEFAULT_USER_BUDGET

    def checks(self) -> list[Check]:
        user_budget_problem = budget_problem(self.user_budget)
        return [
            (isinstance(self.self_sign_up, bool), "self_sign_up", "must be True or False"),
            (self.mfa in MFA_MODES, "mfa", f"must be one of {', '.join(MFA_MODES)}"),
            (self.feature_plan in FEATURE_PLANS, "feature_plan", f"must be one of {', '.join(FEATURE_PLANS)}"),
            (whole(self.password_min_length, 99, minimum=12), "password_min_length",
             "must be a whole number from 12 to 99"),
            (whole(self.temporary_password_days, 365), "temporary_password_days",
             "must be a whole number of days from 1 to 365"),
            (whole(self.history_retention_days, 3650), "history_retention_days",
             "must be a whole number of days from 1 to 3650"),
            (whole(self.retrieval_top_k, 20), "retrieval_top_k", "must be a whole number from 1 to 20"),
            (whole(self.history_messages, 50, minimum=0), "history_messages", "must be a whole number from 0 to 50"),
            (isinstance(self.callback_urls, tuple) and all(
                isinstance(url, str) and _CALLBACK.match(url) for url in self.callback_urls), "callback_urls",
             "must be a tuple of https URLs (or http://localhost URLs) such as 'https://chat.example.com/'"),
            (whole(self.id_token_minutes, 1440, minimum=5), "id_token_minutes",
             "must be a whole number of minutes from 5 to 1440"),
            (user_budget_problem is None, "user_budget", f"{user_budget_problem}"),
        ]  # fmt: skip
