namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// Argon2id cost for keys that a <see cref="FileKeyVault"/> creates. Opening a key always uses the parameters stored in
/// its file, so a vault can open files written with other options (within the same floor and ceiling).
/// </summary>
/// <remarks>
/// The defaults, <see cref="DefaultMemorySizeKib"/> (64 MiB) and <see cref="DefaultIterations"/> (3 passes) with
/// parallelism 1, take on the order of 0.1 to 0.3 s on a current desktop core. Lower values exist for tests only.
/// The floor and ceiling apply to files too: a file whose parameters fall outside them is
/// <see cref="KeyStoreErrorKind.Corrupt"/>, so a damaged or hostile file cannot demand gigabytes or hours of work.
/// </remarks>
public sealed record FileKeyVaultOptions
{
    /// <summary>Production memory cost: 65536 KiB (64 MiB).</summary>
    public const int DefaultMemorySizeKib = 64 * 1024;

    /// <summary>Production time cost: 3 passes.</summary>
    public const int DefaultIterations = 3;

    /// <summary>Lowest accepted memory cost: 8192 KiB (8 MiB). Meant for tests, not for real keys.</summary>
    public const int MinimumMemorySizeKib = 8 * 1024;

    /// <summary>Highest accepted memory cost: 1048576 KiB (1 GiB, libsodium's "sensitive" level).</summary>
    public const int MaximumMemorySizeKib = 1024 * 1024;

    /// <summary>Lowest accepted time cost: 1 pass.</summary>
    public const int MinimumIterations = 1;

    /// <summary>Highest accepted time cost: 32 passes.</summary>
    public const int MaximumIterations = 32;

    /// <summary>The production defaults.</summary>
    public static FileKeyVaultOptions Default { get; } = new();

    /// <summary>Argon2id memory cost in KiB; between <see cref="MinimumMemorySizeKib"/> and <see cref="MaximumMemorySizeKib"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside that range.</exception>
    public int MemorySizeKib
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinimumMemorySizeKib);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaximumMemorySizeKib);
            field = value;
        }
    } = DefaultMemorySizeKib;

    /// <summary>Argon2id passes over memory; between <see cref="MinimumIterations"/> and <see cref="MaximumIterations"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is outside that range.</exception>
    public int Iterations
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinimumIterations);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, MaximumIterations);
            field = value;
        }
    } = DefaultIterations;

    /// <summary>Whether a file's stored parameters are within the accepted floor and ceiling.</summary>
    internal static bool AreAcceptable(uint memorySizeKib, uint iterations) =>
        memorySizeKib is >= MinimumMemorySizeKib and <= MaximumMemorySizeKib
        && iterations is >= MinimumIterations and <= MaximumIterations;
}
