using System.Diagnostics;

namespace SecureChannels.Benchmarks.SideBySide;

/// <summary>
/// One side of a side-by-side measurement: <see cref="RunAsync"/> does the given number of operations (handshakes,
/// messages, primitive calls) and returns how long they took, timing only the operations themselves.
/// </summary>
internal sealed record Contender(string Name, Func<long, Task<TimeSpan>> RunAsync)
{
    /// <summary>A synchronous contender (a primitive in a loop), timed around the loop.</summary>
    public static Contender Synchronous(string name, Action<long> run) => new(name, count =>
    {
        var started = Stopwatch.GetTimestamp();
        run(count);
        return Task.FromResult(Stopwatch.GetElapsedTime(started));
    });
}

/// <summary>A contender's operations per second in each measured round, and how many operations a round did.</summary>
internal sealed record Measured(string Name, long OperationsPerRound, IReadOnlyList<double> Rates)
{
    /// <summary>The median rate: the figure reported, robust to one disturbed round.</summary>
    public double Rate => BenchText.Median(Rates);
}
