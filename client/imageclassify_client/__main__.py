"""`python -m imageclassify_client` runs the same command as `imageclassify`."""

from imageclassify_client.cli import main

main()
