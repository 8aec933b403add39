"""Build time only, never needed by the installed app: learning the ICD lookup from coded strings."""
