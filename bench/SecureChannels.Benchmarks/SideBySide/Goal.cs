using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>A target a figure is judged against, as printed next to it (<c>≥ 6.00x</c>, <c>≤ 30 µs</c>).</summary>
internal sealed record Goal(string Text, Func<double, bool> IsMet)
{
    public const string Met = "met";
    public const string NotMet = "**NOT met**";

    /// <summary>A ratio of ours to a baseline's, at least <paramref name="times"/>.</summary>
    public static Goal AtLeastTimes(double times) => new(Invariant($"≥ {times:F2}x"), v => v >= times);

    public static Goal AtLeastPercent(double percent) => new(Invariant($"≥ {percent:F0} %"), v => v >= percent);

    public static Goal AtMostMicroseconds(double microseconds) => new(Invariant($"≤ {microseconds:F0} µs"), v => v <= microseconds);

    public static Goal AtMostBytes(int bytes) => new(bytes == 0 ? "0 B" : FormatSize(bytes), v => v <= bytes);

    /// <summary>Nothing allocated: an average per operation that rounds to 0 B (a rare stray allocation, such as a timer's, is not the path's).</summary>
    public static Goal NoAllocation { get; } = new("0 B", v => v < 0.5);

    public string Verdict(double value) => IsMet(value) ? Met : NotMet;
}
