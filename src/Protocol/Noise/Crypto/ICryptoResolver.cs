namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>
/// The one seam between the Noise state machine and the primitives: each method answers the function a
/// protocol name asks for, or null for "not here", so backends can be chained with <see cref="FallbackCryptoResolver"/>.
/// </summary>
public interface ICryptoResolver
{
    /// <summary>The DH function named <paramref name="name"/> (for example <c>25519</c>), or null.</summary>
    NoiseDh? ResolveDh(string name);

    /// <summary>The cipher function named <paramref name="name"/> (for example <c>ChaChaPoly</c>), or null.</summary>
    NoiseCipher? ResolveCipher(string name);

    /// <summary>The hash function named <paramref name="name"/> (for example <c>BLAKE2b</c>), or null.</summary>
    NoiseHash? ResolveHash(string name);
}

/// <summary>
/// libsodium for X25519 (called directly), hashes through NSec, our BLAKE2s, and <see cref="AeadCipher"/> for both
/// AEADs (libsodium for small records, the platform's for large ones).
/// </summary>
public sealed class DefaultCryptoResolver : ICryptoResolver
{
    /// <summary>The shared instance.</summary>
    public static readonly ICryptoResolver Instance = new DefaultCryptoResolver();

    private DefaultCryptoResolver()
    {
    }

    /// <inheritdoc />
    public NoiseDh? ResolveDh(string name) => name == "25519" ? Curve25519Dh.Instance : null;

    /// <inheritdoc />
    public NoiseCipher? ResolveCipher(string name) => name switch
    {
        "ChaChaPoly" => AeadCipher.ChaChaPoly,
        "AESGCM" => AeadCipher.AesGcm,
        _ => null,
    };

    /// <inheritdoc />
    public NoiseHash? ResolveHash(string name) => name switch
    {
        "SHA256" => NSecHash.Sha256,
        "SHA512" => NSecHash.Sha512,
        "BLAKE2b" => NSecHash.Blake2b,
        "BLAKE2s" => Blake2sHash.Instance,
        _ => null,
    };
}

/// <summary>Asks <paramref name="primary"/> first and <paramref name="fallback"/> for whatever it does not have.</summary>
public sealed class FallbackCryptoResolver(ICryptoResolver primary, ICryptoResolver fallback) : ICryptoResolver
{
    /// <inheritdoc />
    public NoiseDh? ResolveDh(string name) => primary.ResolveDh(name) ?? fallback.ResolveDh(name);

    /// <inheritdoc />
    public NoiseCipher? ResolveCipher(string name) => primary.ResolveCipher(name) ?? fallback.ResolveCipher(name);

    /// <inheritdoc />
    public NoiseHash? ResolveHash(string name) => primary.ResolveHash(name) ?? fallback.ResolveHash(name);
}
