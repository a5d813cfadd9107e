using System.Globalization;

namespace SecureChannels.Benchmarks;

/// <summary>What the side-by-side runs (<c>--relay</c>, <c>--authority</c>) print alike: culture-invariant text, quantiles, the machine's load.</summary>
internal static class BenchText
{
    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>The <paramref name="quantile"/> of <paramref name="sorted"/> (nearest rank).</summary>
    public static double Quantile(double[] sorted, double quantile) =>
        sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>The 1, 5 and 15 minute load averages: other work on the machine scatters every number.</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
