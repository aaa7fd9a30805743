"""A researcher's own small model (2,697 parameters), registered outside jaxvision: what
``bench/reload_time.py`` reloads beside MobileNet."""

from flax import nnx

from jaxvision.layers import BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, Rescaling, SeparableConv2D
from jaxvision.models import Model, register


@register
class SepNet(Model):
    def __init__(self, *, rngs: nnx.Rngs):
        self.rescale = Rescaling(1 / 255)
        self.stem = Conv2D(3, 8, 3, activation="relu", rngs=rngs)
        self.sep1 = SeparableConv2D(8, 16, 3, padding="same", rngs=rngs)
        self.bn1 = BatchNormalization(16, rngs=rngs)
        self.sep2 = SeparableConv2D(16, 32, 3, padding="same", rngs=rngs)
        self.bn2 = BatchNormalization(32, rngs=rngs)
        self.sep3 = SeparableConv2D(32, 32, 3, padding="same", activation="relu", rngs=rngs)
        self.pool = GlobalAveragePooling2D()
        self.head = Dense(32, 1, activation="sigmoid", rngs=rngs)

    def forward(self, x, tap):
        x = tap("stem", self.stem(self.rescale(x)))
        x = tap("bn1", nnx.relu(self.bn1(self.sep1(x))))
        x = tap("bn2", nnx.relu(self.bn2(self.sep2(x))))
        return tap("head", self.head(self.pool(tap("sep3", self.sep3(x)))))
