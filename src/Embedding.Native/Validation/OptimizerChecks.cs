using System;
using System.Globalization;

namespace Embedding.Native;

/// <summary>
/// Hyper-parameter checks and messages shared by the span API and the C ABI. The texts are
/// torch's own (<c>ValueError: Invalid learning rate: ...</c>); unlike torch, NaN is always rejected.
/// </summary>
internal static class OptimizerChecks
{
    /// <summary>A rejected argument: its C# parameter name, value and message.</summary>
    public readonly record struct Error(string Parameter, object Value, string Message);

    public static Error? Sgd(double lr, double weightDecay) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(weightDecay, "weightDecay", "Invalid weight_decay value");

    public static Error? Adagrad(double lr, double lrDecay, double eps, long step) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(lrDecay, "lrDecay", "Invalid lr_decay value")
        ?? AtLeastZero(eps, "eps", "Invalid epsilon value")
        ?? Step(step);

    public static Error? RowwiseAdagrad(double lr, double eps) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(eps, "eps", "Invalid epsilon value");

    public static Error? SparseAdam(double lr, double beta1, double beta2, double eps, long step) =>
        AboveZero(lr, "lr", "Invalid learning rate")
        ?? AboveZero(eps, "eps", "Invalid epsilon value")
        ?? Beta(beta1, "beta1", 0)
        ?? Beta(beta2, "beta2", 1)
        ?? Step(step);

    public static string NotAscending(long position, long value, long previous) => string.Create(CultureInfo.InvariantCulture,
        $"row {value} at position {position} is not above the row before it ({previous}); rows must be strictly ascending (coalesce the gradient first)");

    private static Error? AtLeastZero(double value, string name, string text) =>
        value >= 0 ? null : new Error(name, value, Text($"{text}: {value}"));

    private static Error? AboveZero(double value, string name, string text) =>
        value > 0 ? null : new Error(name, value, Text($"{text}: {value}"));

    private static Error? Beta(double value, string name, int index) =>
        value >= 0 && value < 1 ? null : new Error(name, value, Text($"Invalid beta parameter at index {index}: {value}"));

    private static Error? Step(long step) =>
        step >= 1 ? null : new Error("step", step, Text($"step is {step}; it must be at least 1 (the 1-based number of this step)"));

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
