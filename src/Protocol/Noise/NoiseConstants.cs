namespace SecureChannels.Protocol.Noise;

/// <summary>
/// The numbers of the Noise specification (revision 34), in one place, each derived from the others
/// where the specification derives them.
/// </summary>
public static class NoiseConstants
{
    /// <summary>Largest Noise message, handshake or transport (spec §3): a 16-bit length fits every transport.</summary>
    public const int MaxMessageLength = 65535;

    /// <summary>Authentication tag of both AEADs (ChaChaPoly and AESGCM).</summary>
    public const int TagLength = 16;

    /// <summary>Largest transport payload: one tag always rides along.</summary>
    public const int MaxTransportPayloadLength = MaxMessageLength - TagLength;

    /// <summary>Cipher key length of both AEADs and the truncation length of HKDF outputs (spec §5.2, §5.3).</summary>
    public const int CipherKeyLength = 32;

    /// <summary>Length of a pre-shared key (spec §9).</summary>
    public const int PskLength = 32;

    /// <summary>Largest HASHLEN among the supported hashes (SHA512, BLAKE2b).</summary>
    public const int MaxHashLength = 64;

    /// <summary>Largest BLOCKLEN among the supported hashes (SHA512, BLAKE2b).</summary>
    public const int MaxHashBlockLength = 128;

    /// <summary>Nonce value reserved for Rekey (spec §4.2): 2^64-1 is never used to encrypt a message.</summary>
    public const ulong ReservedNonce = ulong.MaxValue;
}
