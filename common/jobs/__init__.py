"""Sort jobs: the API service, sorting one image, labelling uploads, the queue router (`worker`) and the
CloudEvents it receives."""
