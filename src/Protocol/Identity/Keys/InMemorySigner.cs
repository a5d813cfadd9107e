using NSec.Cryptography;

namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// An Ed25519 key held in process memory by NSec (libsodium). The private key cannot be exported, printed or read
/// through this type; <see cref="ToString"/> shows only the public key.
/// </summary>
/// <remarks>
/// Disposing a signer that owns its key disposes the NSec <see cref="Key"/>, which wipes the private key.
/// A signer handed out by <see cref="InMemoryKeyStore"/> borrows the store's key: disposing it only makes the signer
/// unusable, and deleting the key from the store (or disposing the store) makes the signer fail too.
/// Signing is safe from several threads at once.
/// </remarks>
public sealed class InMemorySigner : ISigner, IDisposable
{
    private const int SignatureLength = 64;
    private const int SeedLength = 32;

    private readonly Key _key;
    private readonly bool _ownsKey;
    private readonly byte[] _publicKey;
    private int _disposed;

    private InMemorySigner(Key key, bool ownsKey)
    {
        _key = key;
        _ownsKey = ownsKey;
        _publicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    /// <inheritdoc />
    public ReadOnlyMemory<byte> PublicKey => _publicKey;

    /// <summary>Generates a new random Ed25519 key that cannot be exported.</summary>
    public static InMemorySigner Generate() => new(Key.Create(SignatureAlgorithm.Ed25519), ownsKey: true);

    /// <summary>
    /// Imports a 32-byte Ed25519 seed (RFC 8032 private key) into a key that cannot be exported again. For keys
    /// that already exist elsewhere and for reproducible examples; the caller should wipe its copy.
    /// </summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static InMemorySigner Import(ReadOnlySpan<byte> seed) =>
        seed.Length == 32
            ? new(Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey), ownsKey: true)
            : throw new ArgumentException("An Ed25519 seed is 32 bytes.", nameof(seed));

    /// <summary>Wraps <paramref name="key"/>; with <paramref name="ownsKey"/> the signer disposes it.</summary>
    internal static InMemorySigner FromKey(Key key, bool ownsKey)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Algorithm != SignatureAlgorithm.Ed25519)
        {
            throw new ArgumentException("The key is not an Ed25519 key.", nameof(key));
        }

        return new InMemorySigner(key, ownsKey);
    }

    /// <summary>Imports a 32-byte Ed25519 seed (RFC 8032 private key) as a key that cannot be exported. The caller wipes <paramref name="seed"/>.</summary>
    internal static Key ImportSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedLength)
        {
            throw new ArgumentException($"An Ed25519 seed is {SeedLength} bytes.", nameof(seed));
        }

        return Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey);
    }

    /// <inheritdoc />
    public ValueTask SignAsync(ReadOnlyMemory<byte> message, Memory<byte> signature, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Sign(message.Span, signature.Span);
            return ValueTask.CompletedTask;
        }
        catch (Exception exception) when (exception is ArgumentException or ObjectDisposedException)
        {
            return ValueTask.FromException(exception);
        }
    }

    /// <summary>Signs synchronously; see <see cref="SignAsync"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="signature"/> is shorter than 64 bytes.</exception>
    /// <exception cref="ObjectDisposedException">The signer (or, for a borrowed key, its store entry) was disposed.</exception>
    public void Sign(ReadOnlySpan<byte> message, Span<byte> signature)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (signature.Length < SignatureLength)
        {
            throw new ArgumentException($"The signature buffer must hold {SignatureLength} bytes.", nameof(signature));
        }

        SignatureAlgorithm.Ed25519.Sign(_key, message, signature[..SignatureLength]);
    }

    /// <summary>Shows the algorithm and the public key in hex; never anything private.</summary>
    public override string ToString() => $"{nameof(InMemorySigner)}(Ed25519, public key {Convert.ToHexStringLower(_publicKey)})";

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _ownsKey)
        {
            _key.Dispose();
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
