# Copied verbatim from the guide "Batch Import & Python SDK Guide"
# (shared/seeds/000_d41620c5c5cf5a0a.txt, outside this repository), lines 226-241:
# "Creating Import Bundles > Entity Examples > Sparks (Micro-Lessons)".
# The stored guide lost its indentation and blank lines; the indentation is restored, nothing else.
# The guide's text is cut off here, inside `content_md`: the lesson's own ```python fence swallowed the
# rest of the example, so this is not complete Python (test_guide.py completes it).
sparks = [
    SparkImport(
        title="Self-Attention Explained",
        slug="self-attention-explained",
        summary="Learn how tokens communicate through attention weights",
        content_md="""
# Self-Attention Explained
Self-attention allows each token in a sequence to attend to all other tokens...
## Key Concepts
1. **Query, Key, Value**: The three projections...
2. **Attention Weights**: Computed via softmax...
3. **Scaled Dot-Product**: Why we divide by √d_k...
## Example
```python
import torch
attention = torch.softmax(Q @ K.T / math.sqrt(d_k), dim=-1) @ V
