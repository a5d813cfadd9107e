using System.Text;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Protocol.Noise;

/// <summary>
/// A parsed, resolved protocol name (spec §8): <c>Noise_PATTERN_DH_CIPHER_HASH</c>, for example
/// <c>Noise_XX_25519_ChaChaPoly_BLAKE2b</c>.
/// </summary>
public sealed class NoiseProtocol
{
    private const string Prefix = "Noise";

    // The obsolete pre-revision-31 PSK scheme; its vectors exist, its key schedule is not Noise's today.
    private const string ObsoletePskPrefix = "NoisePSK";

    // A name is ASCII and, per spec §8, at most 255 bytes.
    private const int MaxNameLength = 255;

    private NoiseProtocol(string name, HandshakePattern pattern, NoiseDh dh, NoiseCipher cipher, NoiseHash hash)
    {
        Name = name;
        Pattern = pattern;
        Dh = dh;
        Cipher = cipher;
        Hash = hash;
    }

    /// <summary>The full protocol name.</summary>
    public string Name { get; }

    /// <summary>The handshake pattern, modifiers applied.</summary>
    public HandshakePattern Pattern { get; }

    /// <summary>The DH function.</summary>
    public NoiseDh Dh { get; }

    /// <summary>The cipher function.</summary>
    public NoiseCipher Cipher { get; }

    /// <summary>The hash function.</summary>
    public NoiseHash Hash { get; }

    /// <summary>Parses <paramref name="name"/> and resolves its functions.</summary>
    /// <param name="name">The protocol name.</param>
    /// <param name="resolver">Where the functions come from; <see cref="DefaultCryptoResolver"/> when null.</param>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.InvalidProtocolName"/> for a malformed name or unknown pattern or modifier;
    /// <see cref="NoiseErrorKind.UnsupportedPrimitive"/> for a function the resolver does not provide (DH 448,
    /// for example) or the obsolete <c>NoisePSK_</c> scheme.
    /// </exception>
    public static NoiseProtocol Parse(string name, ICryptoResolver? resolver = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        resolver ??= DefaultCryptoResolver.Instance;
        if (name.Length > MaxNameLength || !Ascii.IsValid(name))
        {
            throw new NoiseException(NoiseErrorKind.InvalidProtocolName, $"A protocol name is ASCII of at most {MaxNameLength} characters.");
        }

        var parts = name.Split('_');
        if (parts.Length != 5 || parts.Any(string.IsNullOrEmpty))
        {
            throw new NoiseException(NoiseErrorKind.InvalidProtocolName, $"'{name}' is not of the form Noise_PATTERN_DH_CIPHER_HASH.");
        }

        if (parts[0] == ObsoletePskPrefix)
        {
            throw new NoiseException(NoiseErrorKind.UnsupportedPrimitive, $"'{name}' uses the obsolete NoisePSK scheme; use the psk modifiers of revision 34.");
        }

        if (parts[0] != Prefix)
        {
            throw new NoiseException(NoiseErrorKind.InvalidProtocolName, $"'{name}' does not start with '{Prefix}_'.");
        }

        var pattern = HandshakePattern.Parse(parts[1]);
        var dh = resolver.ResolveDh(parts[2]) ?? throw Unsupported("DH", parts[2]);
        var cipher = resolver.ResolveCipher(parts[3]) ?? throw Unsupported("cipher", parts[3]);
        var hash = resolver.ResolveHash(parts[4]) ?? throw Unsupported("hash", parts[4]);
        return new NoiseProtocol(name, pattern, dh, cipher, hash);
    }

    private static NoiseException Unsupported(string kind, string value) =>
        new(NoiseErrorKind.UnsupportedPrimitive, $"The {kind} function '{value}' is not supported.");

    /// <inheritdoc />
    public override string ToString() => Name;
}
