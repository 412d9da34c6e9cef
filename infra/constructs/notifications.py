"""Notification destinations: where failures and alerts go. The webhook URL is a sensitive Terraform variable
(TF_VAR_<name>_url in CI), never a literal in code or in the synthesized JSON."""

from __future__ import annotations

from cdktn import TerraformVariable
from cdktn_provider_databricks.notification_destination import (
    NotificationDestination,
    NotificationDestinationConfigA,
    NotificationDestinationConfigGenericWebhook,
)
from constructs import Construct

from spec.config import Environment


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, env: Environment) -> None:
        super().__init__(scope, construct_id)
        self.emails: list[str] = list(env.alerts.emails)
        self.webhook: NotificationDestination | None = None
        name = env.alerts.webhook_destination_name
        if name:
            url = TerraformVariable(
                self,
                "webhook_url",
                type="string",
                sensitive=True,
                description=f"URL of the {name} webhook (set TF_VAR_ in CI from a secret store)",
            )
            # A stable name, so CI sets TF_VAR_alert_webhook_url.
            url.override_logical_id("alert_webhook_url")
            self.webhook = NotificationDestination(
                self,
                "webhook",
                display_name=f"{name} ({env.name})",
                config=NotificationDestinationConfigA(
                    generic_webhook=NotificationDestinationConfigGenericWebhook(url=url.string_value)
                ),
            )
