"""Where wheels go: containers (local, Swift, S3), the upload with its index and history
pages, and retention."""
