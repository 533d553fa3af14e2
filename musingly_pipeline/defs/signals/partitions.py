"""One partition per UTC day of signals."""

import dagster as dg

signal_days = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
