namespace SecureChannels.Protocol.Resilience;

/// <summary>
/// Jittered exponential back-off between reconnection attempts: each wait is a random half to the whole of the
/// current step, and the step doubles up to a cap. The jitter keeps a fleet that lost the same server together from
/// returning together; the cap bounds how long a recovered server waits to be found.
/// </summary>
public sealed class Backoff
{
    private readonly TimeSpan _first;
    private readonly TimeSpan _max;
    private TimeSpan _step;

    /// <summary>Creates the back-off.</summary>
    /// <param name="first">The first step (1 s for the relay and the authority).</param>
    /// <param name="max">The cap (30 s).</param>
    public Backoff(TimeSpan first, TimeSpan max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(first, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, first);
        (_first, _max, _step) = (first, max, first);
    }

    /// <summary>The next wait; the step doubles for the one after.</summary>
    public TimeSpan Next()
    {
        var wait = TimeSpan.FromTicks((long)(_step.Ticks * (0.5 + (Random.Shared.NextDouble() / 2))));
        _step = TimeSpan.FromTicks(Math.Min(_max.Ticks, _step.Ticks * 2));
        return wait;
    }

    /// <summary>Back to the first step, after a connection that worked.</summary>
    public void Reset() => _step = _first;
}
