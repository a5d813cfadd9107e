using System.Globalization;

namespace SecureChannels.Benchmarks.Soak;

/// <summary>
/// What one soak run does: how many agents, for how long, how busy, and when the relay and some agents are killed.
/// The defaults are the real soak; <see cref="Quick"/> is the short one the CI runs.
/// </summary>
internal sealed record SoakOptions
{
    /// <summary>Agents, in pairs (an opener and an acceptor): an odd count is rounded up.</summary>
    public int Agents { get; init; } = 2000;

    /// <summary>How long the traffic runs, killings included (setup and the drain at the end come on top).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Seeds every random choice (message counts, pauses, closes, which agents die), so a run reproduces its schedule.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>The relay is killed this often (the first time one period in); null: never.</summary>
    public TimeSpan? RelayKillEvery { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the relay stays down each time.</summary>
    public TimeSpan RelayDowntime { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Agents are killed this often (the first time one period in); null: never.</summary>
    public TimeSpan? AgentKillEvery { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many agents die each time.</summary>
    public int AgentsPerKill { get; init; } = 10;

    /// <summary>How long a killed agent stays down.</summary>
    public TimeSpan AgentDowntime { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The most messages one side sends in one channel (each side draws 1 to this many, per channel).</summary>
    public int MaxMessagesPerChannel { get; init; } = 40;

    /// <summary>
    /// The longest pause between two messages of one side (drawn from 0 to this): it sets the load. The default keeps
    /// 2,000 agents (about 1,300 messages a second offered) below what 2 cores carry, so latencies are not queueing.
    /// </summary>
    public TimeSpan MaxPause { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>The share of messages sent as requests (the rest are one-way bytes).</summary>
    public double RequestShare { get; init; } = 0.3;

    /// <summary>The share of channels ended by disposal (GOING_AWAY) rather than a graceful close.</summary>
    public double DisposeShare { get; init; } = 0.2;

    /// <summary>Agents started at once at the beginning (each makes a hop handshake with the relay).</summary>
    public int StartBatch { get; init; } = 100;

    /// <summary>The longest any one phase may take before the run is declared hung (setup, stop, drain, teardown).</summary>
    public TimeSpan PhaseDeadline { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Managed memory after the run may exceed the baseline by this fraction (or <see cref="MemorySlackBytes"/>, the larger) and still count as returned.</summary>
    public double MemoryTolerance { get; init; } = 0.10;

    /// <summary>See <see cref="MemoryTolerance"/>: the absolute slack, for small baselines.</summary>
    public long MemorySlackBytes { get; init; } = 16L << 20;

    /// <summary>Runs of the whole soak in this one process, one after the other: memory that a second run does not add to is warmed caches and pools, not a leak.</summary>
    public int Repeat { get; init; } = 1;

    /// <summary>The CI's preset: 100 agents for 20 s, the relay killed once, a few agents killed three times.</summary>
    public static SoakOptions Quick { get; } = new()
    {
        Agents = 100,
        Duration = TimeSpan.FromSeconds(20),
        RelayKillEvery = TimeSpan.FromSeconds(9),
        RelayDowntime = TimeSpan.FromSeconds(1),
        AgentKillEvery = TimeSpan.FromSeconds(5),
        AgentsPerKill = 4,
        AgentDowntime = TimeSpan.FromSeconds(1),
        MaxPause = TimeSpan.FromMilliseconds(100),
        PhaseDeadline = TimeSpan.FromSeconds(30),
    };

    public int Pairs => (Agents + 1) / 2;

    /// <summary>Parses <c>[--quick] [--agents N] [--duration 10m|90s|1h] [--seed S] [--relay-kill-every 60s|off] [--agent-kill-every 5s|off] [--agents-per-kill N] [--max-pause 3s] [--repeat N]</c>.</summary>
    /// <exception cref="ArgumentException">An unknown option or a bad value.</exception>
    public static SoakOptions Parse(IReadOnlyList<string> args)
    {
        var options = args.Contains("--quick") ? Quick : new SoakOptions();
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] == "--quick")
            {
                continue;
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{args[i]} needs a value.");
            }

            var value = args[++i];
            options = args[i - 1] switch
            {
                "--agents" => options with { Agents = Positive(value) },
                "--duration" => options with { Duration = ParseDuration(value) },
                "--seed" => options with { Seed = int.Parse(value, CultureInfo.InvariantCulture) },
                "--relay-kill-every" => options with { RelayKillEvery = value == "off" ? null : ParseDuration(value) },
                "--agent-kill-every" => options with { AgentKillEvery = value == "off" ? null : ParseDuration(value) },
                "--agents-per-kill" => options with { AgentsPerKill = Positive(value) },
                "--max-pause" => options with { MaxPause = ParseDuration(value) },
                "--repeat" => options with { Repeat = Positive(value) },
                _ => throw new ArgumentException($"Unknown option {args[i - 1]}."),
            };
        }

        return options;
    }

    /// <summary>A duration as <c>250ms</c>, <c>30s</c>, <c>10m</c> or <c>1h</c>.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        var (digits, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], "ms") : (text[..^1], text[^1..]);
        if (!double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out var amount) || amount <= 0)
        {
            throw new ArgumentException($"'{text}' is not a duration (250ms, 30s, 10m, 1h).");
        }

        return unit switch
        {
            "ms" => TimeSpan.FromMilliseconds(amount),
            "s" => TimeSpan.FromSeconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            "h" => TimeSpan.FromHours(amount),
            _ => throw new ArgumentException($"'{text}' is not a duration (250ms, 30s, 10m, 1h)."),
        };
    }

    private static int Positive(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : throw new ArgumentException($"'{text}' is not a positive count.");
}
