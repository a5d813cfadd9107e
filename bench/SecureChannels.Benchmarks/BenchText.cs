using System.Globalization;

namespace SecureChannels.Benchmarks;

/// <summary>What the side-by-side runs (<c>--relay</c>, <c>--authority</c>, <c>compare</c>) print alike: culture-invariant text, quantiles, sizes, the machine's load.</summary>
internal static class BenchText
{
    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>The <paramref name="quantile"/> of <paramref name="sorted"/> (nearest rank).</summary>
    public static double Quantile(double[] sorted, double quantile) =>
        sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>The <paramref name="quantile"/> of <paramref name="values"/>, in any order (nearest rank).</summary>
    public static double Percentile(IEnumerable<double> values, double quantile) => Quantile([.. values.Order()], quantile);

    public static double Median(IEnumerable<double> values) => Percentile(values, 0.5);

    /// <summary>A message size as its power of two reads: 64 B, 1 KiB, 64 KiB, 1 MiB.</summary>
    public static string FormatSize(int size) => size switch
    {
        >= 1 << 20 => Invariant($"{size >> 20} MiB"),
        >= 1 << 10 => Invariant($"{size >> 10} KiB"),
        _ => Invariant($"{size} B"),
    };

    public static string FormatBytes(double bytes) => Invariant($"{bytes:N0} B");

    /// <summary>The 1, 5 and 15 minute load averages: other work on the machine scatters every number.</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unknown";
        }
    }
}
