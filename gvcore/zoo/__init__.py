"""Published models: the registry, fetching and verifying weights, ncnn conversion."""
