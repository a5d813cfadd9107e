namespace SecureChannels.Fuzz;

/// <summary>
/// One fuzz target: feeds an input to a real parser or state machine. Only the project's typed exceptions that the
/// input can legitimately cause are caught inside <see cref="Run"/>; anything else escapes and is a finding.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>The name on the command line and of the folders under fuzz/ (seeds, corpus, regressions, results).</summary>
    string Name { get; }

    /// <summary>Runs one input. Deterministic: the same bytes take the same path in every process.</summary>
    void Run(ReadOnlySpan<byte> input);

    /// <summary>Meaningful starting inputs built from real encodings.</summary>
    IEnumerable<byte[]> Seeds();
}

/// <summary>A property the code under test must keep broke (for example a decoded value that re-encodes differently).</summary>
public sealed class FuzzInvariantException(string message) : Exception(message);
