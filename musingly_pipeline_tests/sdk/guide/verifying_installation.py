# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 133-136:
# "SDK Setup > Verifying Installation".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
from musingly_core.models import ImportBundle, DomainImport, SparkImport
# Check version matches TypeScript SDK
import musingly_core
print(f"SDK Version: {musingly_core.__version__}")
