namespace SecureChannels.Authority.Issuance;

/// <summary>
/// A token bucket in front of enrollment: a flood is refused before any hashing, signing or database work.
/// Reads the <see cref="TimeProvider"/>, so tests move a fake clock instead of waiting. Thread-safe.
/// </summary>
internal sealed class EnrollmentGate(int ratePerSecond, int burst, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private long _last = time.GetTimestamp();

    /// <summary>Takes one token if there is one.</summary>
    public bool TryEnter()
    {
        lock (_lock)
        {
            var now = time.GetTimestamp();
            _tokens = Math.Min(burst, _tokens + (time.GetElapsedTime(_last, now).TotalSeconds * ratePerSecond));
            _last = now;
            if (_tokens < 1)
            {
                return false;
            }

            _tokens -= 1;
            return true;
        }
    }
}
