using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// Measures contenders against each other in one process: each is first calibrated (which also warms it up: JIT, pools,
/// connections) to an operation count that lasts about one round, then every round runs each contender once, in an
/// order that reverses from one round to the next, so a drift of the machine (another process, a thermal change)
/// falls on all of them alike. The median of the rounds is the result.
/// </summary>
internal static class AlternatingRounds
{
    // Calibration stops growing the count once a run lasts this share of a round, then scales it to a whole round.
    private const double CalibrationShare = 0.2;

    public static async Task<IReadOnlyList<Measured>> MeasureAsync(SideBySideSettings settings, IReadOnlyList<Contender> contenders, long firstCount = 1)
    {
        var counts = new long[contenders.Count];
        for (var c = 0; c < contenders.Count; c++)
        {
            counts[c] = await CalibrateAsync(contenders[c], settings.RoundTime, firstCount).ConfigureAwait(false);
        }

        var rates = contenders.Select(_ => new List<double>(settings.Rounds)).ToArray();
        for (var round = 0; round < settings.Rounds; round++)
        {
            foreach (var c in Order(round, contenders.Count))
            {
                var elapsed = await contenders[c].RunAsync(counts[c]).ConfigureAwait(false);
                rates[c].Add(counts[c] / elapsed.TotalSeconds);
            }
        }

        return [.. contenders.Select((contender, c) => new Measured(contender.Name, counts[c], rates[c]))];
    }

    /// <summary>The order of <paramref name="count"/> contenders in <paramref name="round"/>: as given in even rounds, reversed in odd ones.</summary>
    public static IEnumerable<int> Order(int round, int count) =>
        round % 2 == 0 ? Enumerable.Range(0, count) : Enumerable.Range(0, count).Reverse();

    private static async Task<long> CalibrateAsync(Contender contender, TimeSpan roundTime, long count)
    {
        while (true)
        {
            var elapsed = await contender.RunAsync(count).ConfigureAwait(false);
            if (elapsed >= roundTime * CalibrationShare)
            {
                return Math.Max(1, (long)(count * (roundTime / elapsed)));
            }

            count *= elapsed < roundTime * CalibrationShare / 16 ? 8 : 2;
            if (count > 1L << 40)
            {
                throw new InvalidOperationException(Invariant($"{contender.Name} takes no measurable time: {elapsed.TotalMicroseconds:F0} us for {count} operations."));
            }
        }
    }
}
