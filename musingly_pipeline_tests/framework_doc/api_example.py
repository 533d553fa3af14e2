# The reliable imports framework document (shared/seeds/002_a57664fe51c6f0a3.txt, outside this
# repository), section "REST API Support" > "Quick REST API Setup", copied verbatim but for the two
# lines marked "added" (the database URL and the port are the test's). The token comes from
# MUSINGLY_API_TOKEN: without one, APIManager refuses to start, as `musingly api` does.
import os  # added

from reliable_imports import BatchManager, APIManager

# Setup batch manager (as before)
manager = BatchManager(os.environ["EXAMPLE_DATABASE_URL"])  # added: the document's URL is a placeholder
manager.registry.discover('myapp.processors')

# Add REST API with one line!
api_manager = APIManager(manager)
api_manager.run(host="0.0.0.0", port=int(os.environ["EXAMPLE_PORT"]))  # added: a free port, not 8000
