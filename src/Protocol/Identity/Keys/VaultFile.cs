using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// The <see cref="FileKeyVault"/> file format, version 1. Every file is exactly <see cref="FileLength"/> (105) bytes;
/// integers are unsigned big-endian.
/// </summary>
/// <remarks>
/// <code>
/// offset  length  field
///      0       4  magic "SCKV" (53 43 4B 56)
///      4       1  version = 0x01
///      5       4  Argon2id memory cost in KiB (u32 BE), 8192..1048576
///      9       4  Argon2id passes (u32 BE), 1..32
///     13       4  Argon2id parallelism (u32 BE), always 1
///     17      16  salt (random)
///     33      24  nonce (random)
///     57      48  XChaCha20-Poly1305 ciphertext (32) || tag (16) of the 32-byte Ed25519 seed
/// </code>
/// The header is bytes 0..56. The wrapping key is Argon2id(UTF-8 passphrase, salt, memory, passes, parallelism 1) with a
/// 32-byte output (libsodium <c>crypto_pwhash</c>, Argon2 version 0x13). The AEAD associated data is the 57-byte header
/// followed by the key name in UTF-8 (no separator or length; the header has a fixed length), so a file renamed to
/// another key name, or a file whose header was edited, fails authentication.
/// </remarks>
internal static class VaultFile
{
    public const byte Version = 1;
    public const int VersionOffset = 4;
    public const int MemorySizeOffset = 5;
    public const int IterationsOffset = 9;
    public const int ParallelismOffset = 13;
    public const int SaltOffset = 17;
    public const int SaltLength = 16;
    public const int NonceOffset = SaltOffset + SaltLength;
    public const int NonceLength = 24;
    public const int HeaderLength = NonceOffset + NonceLength;
    public const int SeedLength = 32;
    public const int TagLength = 16;
    public const int CiphertextLength = SeedLength + TagLength;
    public const int FileLength = HeaderLength + CiphertextLength;
    public const uint Parallelism = 1;

    public static ReadOnlySpan<byte> Magic => "SCKV"u8;

    /// <summary>Encrypts <paramref name="seed"/> under a key derived from <paramref name="passphraseUtf8"/> and returns the whole file.</summary>
    public static byte[] Seal(string name, ReadOnlySpan<byte> passphraseUtf8, int memorySizeKib, int iterations, ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedLength)
        {
            throw new ArgumentException($"An Ed25519 seed is {SeedLength} bytes.", nameof(seed));
        }

        var file = new byte[FileLength];
        var span = file.AsSpan();
        Magic.CopyTo(span);
        span[VersionOffset] = Version;
        BinaryPrimitives.WriteUInt32BigEndian(span[MemorySizeOffset..], checked((uint)memorySizeKib));
        BinaryPrimitives.WriteUInt32BigEndian(span[IterationsOffset..], checked((uint)iterations));
        BinaryPrimitives.WriteUInt32BigEndian(span[ParallelismOffset..], Parallelism);
        RandomNumberGenerator.Fill(span.Slice(SaltOffset, SaltLength));
        RandomNumberGenerator.Fill(span.Slice(NonceOffset, NonceLength));

        Span<byte> associatedData = stackalloc byte[HeaderLength + KeyName.MaxLength];
        associatedData = WriteAssociatedData(span[..HeaderLength], name, associatedData);
        using var wrappingKey = DeriveWrappingKey(passphraseUtf8, span.Slice(SaltOffset, SaltLength), (uint)memorySizeKib, (uint)iterations);
        AeadAlgorithm.XChaCha20Poly1305.Encrypt(
            wrappingKey,
            span.Slice(NonceOffset, NonceLength),
            associatedData,
            seed,
            span.Slice(HeaderLength, CiphertextLength));
        return file;
    }

    /// <summary>
    /// Checks the structure of <paramref name="file"/> (length, magic, version, parameter ranges) without any cryptography.
    /// </summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.Corrupt"/>.</exception>
    public static void Validate(ReadOnlySpan<byte> file, string name)
    {
        if (file.Length != FileLength)
        {
            throw Corrupt(name, $"it is {file.Length} bytes, not {FileLength}");
        }

        if (!file[..Magic.Length].SequenceEqual(Magic))
        {
            throw Corrupt(name, "it does not start with the vault magic");
        }

        if (file[VersionOffset] != Version)
        {
            throw Corrupt(name, $"format version {file[VersionOffset]} is not supported");
        }

        var memorySizeKib = BinaryPrimitives.ReadUInt32BigEndian(file[MemorySizeOffset..]);
        var iterations = BinaryPrimitives.ReadUInt32BigEndian(file[IterationsOffset..]);
        var parallelism = BinaryPrimitives.ReadUInt32BigEndian(file[ParallelismOffset..]);
        if (parallelism != Parallelism || !FileKeyVaultOptions.AreAcceptable(memorySizeKib, iterations))
        {
            throw Corrupt(name, $"its Argon2id parameters (m={memorySizeKib} KiB, t={iterations}, p={parallelism}) are out of range");
        }
    }

    /// <summary>Validates, derives and decrypts; returns the unlocked, non-exportable Ed25519 key.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.Corrupt"/> or <see cref="KeyStoreErrorKind.WrongPassphrase"/>.</exception>
    public static Key Open(ReadOnlySpan<byte> file, string name, ReadOnlySpan<byte> passphraseUtf8)
    {
        Validate(file, name);
        var memorySizeKib = BinaryPrimitives.ReadUInt32BigEndian(file[MemorySizeOffset..]);
        var iterations = BinaryPrimitives.ReadUInt32BigEndian(file[IterationsOffset..]);

        Span<byte> associatedData = stackalloc byte[HeaderLength + KeyName.MaxLength];
        associatedData = WriteAssociatedData(file[..HeaderLength], name, associatedData);
        using var wrappingKey = DeriveWrappingKey(passphraseUtf8, file.Slice(SaltOffset, SaltLength), memorySizeKib, iterations);

        Span<byte> seed = stackalloc byte[SeedLength];
        try
        {
            if (!AeadAlgorithm.XChaCha20Poly1305.Decrypt(
                wrappingKey,
                file.Slice(NonceOffset, NonceLength),
                associatedData,
                file.Slice(HeaderLength, CiphertextLength),
                seed))
            {
                throw new KeyStoreException(
                    KeyStoreErrorKind.WrongPassphrase,
                    $"The key '{name}' could not be decrypted: the passphrase is wrong, or the file was altered or renamed.");
            }

            return InMemorySigner.ImportSeed(seed);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    // The derived key goes straight into an NSec Key (libsodium guarded memory, wiped on Dispose); it never sits in a managed array.
    private static Key DeriveWrappingKey(ReadOnlySpan<byte> passphraseUtf8, ReadOnlySpan<byte> salt, uint memorySizeKib, uint iterations)
    {
        var kdf = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            DegreeOfParallelism = (int)Parallelism,
            MemorySize = memorySizeKib,
            NumberOfPasses = iterations,
        });
        return kdf.DeriveKey(passphraseUtf8, salt, AeadAlgorithm.XChaCha20Poly1305);
    }

    private static Span<byte> WriteAssociatedData(ReadOnlySpan<byte> header, string name, Span<byte> destination)
    {
        header.CopyTo(destination);
        var nameLength = Encoding.UTF8.GetBytes(name, destination[HeaderLength..]);
        return destination[..(HeaderLength + nameLength)];
    }

    private static KeyStoreException Corrupt(string name, string reason) =>
        new(KeyStoreErrorKind.Corrupt, $"The key file for '{name}' is corrupt: {reason}.");
}
