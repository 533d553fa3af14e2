# The reliable imports framework document (shared/seeds/002_a57664fe51c6f0a3.txt, outside this
# repository), copied verbatim: section "Quick Start" > "Create Your First Processor", then section
# "REST API Support" > "Custom Endpoint Behavior". `reliable_imports` is ../reliable_imports.py.
# The document's code is incomplete; each addition is marked "added".
from uuid import uuid4  # added: the processor calls uuid4() without importing it

from reliable_imports import BaseProcessor, ImportContext, ImportBatchItem

# Convention: Class name determines batch type
# CustomerDataProcessor -> handles 'customer_data' batches
class CustomerDataProcessor(BaseProcessor):

    def validate_item(self, item: ImportBatchItem, ctx: ImportContext) -> bool:
        """Validate an item before processing."""
        data = item.source_data
        return data.get('email') and '@' in data['email']

    def process_item(self, item: ImportBatchItem, ctx: ImportContext) -> dict:
        """Process a single item."""
        data = item.source_data

        # Your business logic here
        customer_id = self._create_or_update_customer(data, ctx)

        return {
            'target_table': 'customers',
            'target_id': customer_id
        }

    def _create_or_update_customer(self, data, ctx):
        existing = ctx.execute_one(
            "SELECT id FROM customers WHERE email = %s",
            (data['email'],)
        )

        if existing:
            ctx.execute(
                "UPDATE customers SET name = %s WHERE id = %s",
                (data['name'], existing['id'])
            )
            return existing['id']
        else:
            customer_id = uuid4()
            ctx.execute(
                "INSERT INTO customers (id, email, name) VALUES (%s, %s, %s)",
                (str(customer_id), data['email'], data['name'])
            )
            return customer_id


from reliable_imports import BaseEndpoint, EndpointContext

class CustomerDataEndpoint(BaseEndpoint):
    """Custom endpoint for customer_data batch type."""

    def before_create_batch(self, request_data, ctx: EndpointContext):
        # Add custom validation, rate limiting, etc.
        if not self._check_quota(ctx.user_id):
            raise ValueError("Quota exceeded")
        return request_data

    def after_batch_complete(self, batch_id, summary, ctx):
        # Send notifications, trigger webhooks, etc.
        self._send_slack_notification(summary)


# added: the document leaves _check_quota and _send_slack_notification undefined. Minimal stand-ins:
# each user may create QUOTA batches for the life of the process, and a "Slack" message is a line on
# standard output.
QUOTA = 2


def _check_quota(self, user_id):
    self.used = getattr(self, "used", {})
    self.used[user_id] = self.used.get(user_id, 0) + 1
    return self.used[user_id] <= QUOTA


def _send_slack_notification(self, summary):
    print(f"slack: batch {summary.batch_id} {summary.status}: {summary.completed_items}/{summary.total_items}",
          flush=True)


CustomerDataEndpoint._check_quota = _check_quota
CustomerDataEndpoint._send_slack_notification = _send_slack_notification
