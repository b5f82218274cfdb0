"""Images in: decoding within bounds, media types, the decode gate, and fetching a URL safely."""
