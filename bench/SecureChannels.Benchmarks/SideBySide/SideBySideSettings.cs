using System.Globalization;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// How long and how often <c>compare</c> measures: rounds per measurement, the length a round aims at, and the sizes of
/// the long setups. <c>--quick</c> is a smoke run: it proves every section works, its numbers are rough.
/// </summary>
internal sealed record SideBySideSettings(int Rounds, TimeSpan RoundTime, bool Quick)
{
    private const int DefaultRounds = 5;

    private const int QuickRounds = 3;
    private const int MaxRounds = 99;

    /// <summary>Idle circuits the relay holds while its memory is measured: the goal's count, fewer in a quick run.</summary>
    public int RelayCircuits => Quick ? 2_000 : 10_000;

    /// <summary>64-byte round trips per path and round.</summary>
    public int RoundTripsPerRound => Quick ? 300 : 2_000;

    /// <summary>Message sizes of the allocation probe (about 64 MiB each; 1 MiB messages only in full runs).</summary>
    public IReadOnlyList<int> ProbeSizes => Quick ? [64, 1024, 65536] : [64, 1024, 65536, 1048576];

    /// <summary>
    /// Parses the arguments after <c>compare</c>: <c>--quick</c> and <c>--rounds N</c>. Returns null, with the reason in
    /// <paramref name="error"/>, for anything else.
    /// </summary>
    public static SideBySideSettings? Parse(IReadOnlyList<string> args, out string? error)
    {
        var quick = false;
        int? rounds = null;
        for (var i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    quick = true;
                    break;
                case "--rounds" when i + 1 < args.Count && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxRounds:
                    rounds = n;
                    i++;
                    break;
                case "--rounds":
                    error = $"--rounds takes a number of rounds from 1 to {MaxRounds}.";
                    return null;
                default:
                    error = $"Unknown argument '{args[i]}': compare takes --quick and --rounds N.";
                    return null;
            }
        }

        error = null;

        // A round long enough that timer resolution, a GC or a scheduler hiccup is a small part of it, short enough that
        // five rounds of every contender keep the whole run near 2 minutes on 2 cores.
        return quick
            ? new SideBySideSettings(rounds ?? QuickRounds, TimeSpan.FromMilliseconds(100), Quick: true)
            : new SideBySideSettings(rounds ?? DefaultRounds, TimeSpan.FromMilliseconds(400), Quick: false);
    }
}
