"""torch + torchvision adapters: models, prediction, training. No Qt here."""
