"""One dynamic partition per bundle file name (the inbox sensor adds them)."""

import dagster as dg

bundle_partitions = dg.DynamicPartitionsDefinition(name="bundle_files")
