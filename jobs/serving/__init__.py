"""Model serving: the desired endpoint state (written by the deploy job), the Databricks adapter (databricks-sdk)
and the local serving gateway that answers with the Databricks REST contract."""
