namespace SecureChannels.Protocol.Noise.Crypto;

/// <summary>A Noise DH function (spec §4.1): key generation and agreement over one curve.</summary>
public abstract class NoiseDh
{
    /// <summary>The name as it appears in a protocol name, for example <c>25519</c>.</summary>
    public abstract string Name { get; }

    /// <summary>DHLEN: the length of public keys and of the agreement output.</summary>
    public abstract int DhLength { get; }

    /// <summary>Generates a fresh key pair from the system's cryptographic random source.</summary>
    public abstract DhKeyPair GenerateKeyPair();

    /// <summary>Imports a private key and derives its public key.</summary>
    /// <exception cref="NoiseException"><see cref="NoiseErrorKind.InvalidKey"/> when the key has the wrong length.</exception>
    public abstract DhKeyPair ImportPrivateKey(ReadOnlySpan<byte> privateKey);

    /// <summary>Writes DH(keyPair, publicKey) to <paramref name="output"/> (DHLEN bytes).</summary>
    /// <exception cref="NoiseException">
    /// <see cref="NoiseErrorKind.InvalidKey"/> when the public key has the wrong length or is a low-order point
    /// (the output would be all zeros, which would let a peer force a known key).
    /// </exception>
    public abstract void Agree(DhKeyPair keyPair, ReadOnlySpan<byte> publicKey, Span<byte> output);
}

/// <summary>A DH key pair. The private half never leaves it; disposing it destroys the private key.</summary>
public abstract class DhKeyPair : IDisposable
{
    /// <summary>The public key (DHLEN bytes).</summary>
    public abstract ReadOnlySpan<byte> PublicKey { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the private key.</summary>
    protected abstract void Dispose(bool disposing);

    /// <summary>Never shows key material.</summary>
    public override string ToString() => $"{GetType().Name}(public {Convert.ToHexStringLower(PublicKey)})";
}
