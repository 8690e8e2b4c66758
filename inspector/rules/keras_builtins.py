"""Names of the classes and functions Keras 3 and tf.keras 2 ship, by kind.

Used to tell a built-in object from custom code in a saved config without importing Keras.
Generated from keras 3.15 / tf_keras 2.21 (public API plus every in-package subclass of
Layer, Loss, Metric, Optimizer, LearningRateSchedule, Initializer, Regularizer and
Constraint); ``tests/test_security_rules.py`` re-checks the public API when Keras is installed.
"""

from __future__ import annotations

LAYERS: frozenset[str] = frozenset({
    "AUC", "AbstractRNNCell", "Accuracy", "Activation", "ActivityRegularization",
    "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "Add", "AddLoss",
    "AddMetric", "AdditiveAttention", "AlphaDropout", "Attention", "AugMix", "AutoContrast",
    "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "AvgPool1D",
    "AvgPool2D", "AvgPool3D", "BaseAdaptiveAveragePooling", "BaseAdaptiveMaxPooling",
    "BaseAdaptivePooling", "BaseConv", "BaseConvTranspose", "BaseDenseAttention",
    "BaseDepthwiseConv", "BaseGlobalPooling", "BaseImagePreprocessingLayer", "BasePooling",
    "BaseRandomLayer", "BaseSeparableConv", "BaseSpatialDropout", "BatchNormalization",
    "BatchNormalizationBase", "Bias", "Bidirectional", "BinaryAccuracy", "BinaryCrossentropy",
    "BinaryIoU", "CategoricalAccuracy", "CategoricalCrossentropy", "CategoricalHinge",
    "CategoryEncoding", "CenterCrop", "ClassMethod", "Concatenate",
    "ContrastLimitedAdaptiveHistogramEqualization", "Conv", "Conv1D", "Conv1DTranspose", "Conv2D",
    "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "ConvLSTM", "ConvLSTM1D", "ConvLSTM2D",
    "ConvLSTM3D", "ConvLSTMCell", "ConvRNN", "Convolution1D", "Convolution1DTranspose",
    "Convolution2D", "Convolution2DTranspose", "Convolution3D", "Convolution3DTranspose",
    "CosineSimilarity", "Cropping1D", "Cropping2D", "Cropping3D", "CuDNNGRU", "CuDNNLSTM",
    "CustomScaleLayer", "CutMix", "DataLayer", "Dense", "DenseFeatures", "DepthwiseConv",
    "DepthwiseConv1D", "DepthwiseConv2D", "DeviceWrapper", "Discretization", "Distiller",
    "DistributedCallbackModel", "Dot", "Dropout", "DropoutWrapper", "DynamicEmbedding",
    "DynamicLookup", "ELU", "EinsumDense", "Embedding", "Equalization", "F1Score", "FBetaScore",
    "FalseNegatives", "FalsePositives", "FeatureSpace", "Flatten", "FlaxLayer", "Functional",
    "GRU", "GRUCell", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
    "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalPooling1D",
    "GlobalPooling2D", "GlobalPooling3D", "GroupNormalization", "GroupQueryAttention",
    "GroupedQueryAttention", "HashedCrossing", "Hashing", "Hinge", "Identity", "IndexLookup",
    "InputLayer", "InputSpec", "InstanceMethod", "InstanceProperty", "IntegerLookup", "IoU",
    "JaxLayer", "KLDivergence", "LSTM", "LSTMCell", "Lambda", "Layer", "LayerNormalization",
    "LayerScale", "LeakyReLU", "LinearModel", "LocallyConnected1D", "LocallyConnected2D",
    "LogCoshError", "Masking", "MaxNumBoundingBoxes", "MaxPool1D", "MaxPool2D", "MaxPool3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Maximum", "Mean", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanIoU", "MeanMetricWrapper", "MeanRelativeError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "MeanTensor", "MelSpectrogram", "Merge",
    "Metric", "Minimum", "MixUp", "Model", "ModuleWrapper", "MultiHeadAttention", "Multiply",
    "Normalization", "OneHotIoU", "OneHotMeanIoU", "PReLU", "Permute", "Pipeline", "Poisson",
    "Pooling1D", "Pooling2D", "Pooling3D", "Precision", "PrecisionAtRecall", "PreprocessingLayer",
    "PyMetric", "R2Score", "RMSNormalization", "RNN", "RandAugment", "RandomBrightness",
    "RandomColorDegeneration", "RandomColorJitter", "RandomContrast", "RandomCrop",
    "RandomElasticTransform", "RandomErasing", "RandomFlip", "RandomFourierFeatures",
    "RandomGaussianBlur", "RandomGrayscale", "RandomHeight", "RandomHue", "RandomInvert",
    "RandomPerspective", "RandomPosterization", "RandomRotation", "RandomSaturation",
    "RandomSharpness", "RandomShear", "RandomTranslation", "RandomWidth", "RandomZoom", "ReLU",
    "Recall", "RecallAtPrecision", "Reduce", "ReloadedLayer", "RepeatVector", "Rescaling",
    "Reshape", "ResidualWrapper", "Resizing", "ReversibleEmbedding", "RootMeanSquaredError",
    "STFTSpectrogram", "SensitivityAtSpecificity", "SensitivitySpecificityBase", "SeparableConv",
    "SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D",
    "SequenceFeatures", "Sequential", "SharpnessAwareMinimization", "SimpleRNN", "SimpleRNNCell",
    "SlicingOpLambda", "SmallSubclassMLP", "Softmax", "Solarization", "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy", "SparseTopKCategoricalAccuracy", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "SpecificityAtSensitivity", "SpectralNormalization",
    "SquaredHinge", "StackedRNNCells", "StochasticDepth", "StringLookup", "Subtract", "Sum",
    "SumOverBatchSize", "SumOverBatchSizeMetricWrapper", "SyncBatchNormalization", "TFDConcat",
    "TFDIdentity", "TFOpLambda", "TFSMLayer", "TensorFlowOpLayer", "TextVectorization",
    "ThresholdedReLU", "TimeDistributed", "TopKCategoricalAccuracy", "TorchModuleWrapper",
    "TrueNegatives", "TruePositives", "UnitNormalization", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "WideDeepModel", "Wrapper", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"
})

LOSSES: frozenset[str] = frozenset({
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CTC", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalGeneralizedCrossEntropy", "CategoricalHinge",
    "Circle", "CompileLoss", "CosineSimilarity", "Dice", "Hinge", "Huber", "KLDivergence",
    "LogCosh", "Loss", "LossFunctionWrapper", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson", "Reduction", "ReductionV2",
    "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky"
})

METRICS: frozenset[str] = frozenset({
    "AUC", "Accuracy", "BinaryAccuracy", "BinaryCrossentropy", "BinaryIoU", "CategoricalAccuracy",
    "CategoricalCrossentropy", "CategoricalHinge", "CompileMetrics", "ConcordanceCorrelation",
    "CosineSimilarity", "F1Score", "FBetaScore", "FalseNegatives", "FalsePositives", "Hinge",
    "IoU", "KLDivergence", "LogCoshError", "Mean", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanIoU", "MeanMetricWrapper", "MeanRelativeError",
    "MeanSquaredError", "MeanSquaredLogarithmicError", "MeanTensor", "Metric", "MetricsList",
    "OneHotIoU", "OneHotMeanIoU", "PearsonCorrelation", "Poisson", "Precision",
    "PrecisionAtRecall", "PyMetric", "R2Score", "Recall", "RecallAtPrecision", "Reduce",
    "RootMeanSquaredError", "SensitivityAtSpecificity", "SensitivitySpecificityBase",
    "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy", "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity", "SquaredHinge", "Sum", "SumOverBatchSize",
    "SumOverBatchSizeMetricWrapper", "TopKCategoricalAccuracy", "TrueNegatives", "TruePositives"
})

OPTIMIZERS: frozenset[str] = frozenset({
    "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "CosineDecay",
    "CosineDecayRestarts", "ExponentialDecay", "Ftrl", "InverseTimeDecay", "Lamb",
    "LearningRateSchedule", "LegacyOptimizerWarning", "LinearCosineDecay", "Lion",
    "LossScaleOptimizer", "LossScaleOptimizerV3", "MultiOptimizer", "Muon", "Nadam",
    "NoisyLinearCosineDecay", "NonFusedAdam", "Optimizer", "OptimizerMap", "OptimizerV2",
    "PiecewiseConstantDecay", "PolynomialDecay", "RMSprop", "RestoredOptimizer", "SGD",
    "ScheduleFreeAdamW"
})

INITIALIZERS: frozenset[str] = frozenset({
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
    "IdentityInitializer", "Initializer", "LecunNormal", "LecunUniform", "Ones", "Orthogonal",
    "OrthogonalInitializer", "RandomInitializer", "RandomNormal", "RandomUniform", "STFT",
    "STFTInitializer", "TruncatedNormal", "VarianceScaling", "Zeros", "constant", "glorot_normal",
    "glorot_uniform", "he_normal", "he_uniform", "identity", "lecun_normal", "lecun_uniform",
    "ones", "orthogonal", "random_normal", "random_uniform", "stft", "truncated_normal",
    "variance_scaling", "zeros"
})

REGULARIZERS: frozenset[str] = frozenset({
    "L1", "L1L2", "L2", "OrthogonalRegularizer", "Regularizer", "l1", "l1_l2", "l2",
    "orthogonal_regularizer"
})

CONSTRAINTS: frozenset[str] = frozenset({
    "Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "RadialConstraint", "UnitNorm", "max_norm",
    "min_max_norm", "non_neg", "radial_constraint", "unit_norm"
})

DTYPE_POLICIES: frozenset[str] = frozenset({
    "AWQDTypePolicy", "BaseLossScaleOptimizer", "DTypePolicy", "DTypePolicyMap",
    "FloatDTypePolicy", "GPTQDTypePolicy", "Int4DTypePolicy", "LossScaleOptimizer", "Policy",
    "QuantizedDTypePolicy", "QuantizedFloat8DTypePolicy"
})

# activation / loss / metric / initializer / regularizer functions by name
FUNCTIONS: frozenset[str] = frozenset({
    "KLD", "MAE", "MAPE", "MSE", "MSLE", "binary_accuracy", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_accuracy", "categorical_crossentropy",
    "categorical_focal_crossentropy", "categorical_generalized_cross_entropy", "categorical_hinge",
    "celu", "circle", "concordance_correlation", "cosine_similarity", "ctc", "dice", "elu",
    "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish",
    "hard_tanh", "hinge", "huber", "kl_divergence", "kld", "kullback_leibler_divergence", "l1_l2",
    "leaky_relu", "linear", "log_cosh", "log_sigmoid", "log_softmax", "logcosh", "mae", "mape",
    "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_error",
    "mean_squared_logarithmic_error", "mish", "mse", "msle", "pearson_correlation", "poisson",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus", "softsign",
    "sparse_categorical_accuracy", "sparse_categorical_crossentropy", "sparse_plus",
    "sparse_sigmoid", "sparse_top_k_categorical_accuracy", "sparsemax", "squared_hinge",
    "squareplus", "swish", "tanh", "tanh_shrink", "threshold", "top_k_categorical_accuracy",
    "tversky"
})
