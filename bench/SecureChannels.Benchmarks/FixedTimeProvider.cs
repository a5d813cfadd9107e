namespace SecureChannels.Benchmarks;

/// <summary>
/// A clock stopped at one instant, so credential and attestation validity never drifts during a run and
/// nothing time-driven (rekey by time, keepalive, idle timeout) fires inside a measurement. Timers are still
/// the system's: only <see cref="GetUtcNow"/> is fixed.
/// </summary>
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    /// <summary>The instant every benchmark's credentials are issued at.</summary>
    public static FixedTimeProvider Default { get; } = new(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));

    public override DateTimeOffset GetUtcNow() => now;
}
