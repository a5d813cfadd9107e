using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// Named Ed25519 keys stored one file per key in a directory, each encrypted under a passphrase-derived key.
/// </summary>
/// <remarks>
/// <para>
/// The key <c>name</c> lives in <c>&lt;directory&gt;/&lt;name&gt;.key</c>. File format, version 1: exactly 105 bytes,
/// integers unsigned big-endian:
/// </para>
/// <code>
/// offset  length  field
///      0       4  magic "SCKV" (53 43 4B 56)
///      4       1  version = 0x01
///      5       4  Argon2id memory cost in KiB (u32 BE), 8192..1048576
///      9       4  Argon2id passes (u32 BE), 1..32
///     13       4  Argon2id parallelism (u32 BE), always 1
///     17      16  salt (random per file)
///     33      24  nonce (random per file)
///     57      48  XChaCha20-Poly1305 ciphertext (32) || tag (16) of the 32-byte Ed25519 seed (RFC 8032 private key)
/// </code>
/// <para>
/// The 32-byte wrapping key is Argon2id (version 0x13, libsodium <c>crypto_pwhash</c>) of the passphrase's UTF-8
/// encoding (no Unicode normalisation) with the stored salt and parameters. The AEAD associated data is the 57-byte
/// header (offsets 0 to 56) followed by the key name in UTF-8, so editing the header or renaming the file to another key
/// name makes decryption fail. A failed decryption is reported as <see cref="KeyStoreErrorKind.WrongPassphrase"/>; it is
/// indistinguishable from tampering. A file with the wrong length, magic or version, or with parameters outside
/// <see cref="FileKeyVaultOptions"/>' floor and ceiling, is <see cref="KeyStoreErrorKind.Corrupt"/>.
/// </para>
/// <para>
/// On Unix the directory is created with mode 0700 (an existing directory is left as it is) and each file is written to a
/// temporary file created with mode 0600 in the same directory, flushed to disk, then renamed over an empty 0600
/// placeholder that claimed the name with an exclusive create, so two concurrent creators cannot overwrite each other
/// and a key file never exists with wider permissions or half written. Opening refuses a file whose mode
/// grants any permission to group or others (<see cref="KeyStoreErrorKind.InsecurePermissions"/>), checked on the open
/// handle. On Windows no mode is set or checked; rely on the directory's ACL.
/// </para>
/// <para>
/// Passphrases, seeds and derived keys never appear in messages or <see cref="ToString"/>. The passphrase's UTF-8 copy
/// and the decrypted seed are wiped after use; the derived key only ever lives in an NSec key (libsodium guarded memory),
/// and the unlocked signing key lives in the returned <see cref="InMemorySigner"/> until it is disposed.
/// Creating and opening run one Argon2id derivation synchronously on the calling thread.
/// </para>
/// </remarks>
public sealed class FileKeyVault : IKeyStore
{
    /// <summary>The extension of key files: key <c>name</c> is stored in <c>name.key</c>.</summary>
    public const string FileExtension = ".key";

    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly PassphraseProvider _passphrase;

    /// <summary>A vault in <paramref name="directory"/> whose keys are all protected by one passphrase.</summary>
    /// <param name="directory">The vault directory; created (mode 0700 on Unix) when the first key is created.</param>
    /// <param name="passphrase">
    /// The passphrase. The vault keeps a reference to this memory (not a copy) and reads it on each create and open,
    /// so the caller must keep it unchanged while using the vault and may wipe it afterwards.
    /// </param>
    /// <param name="options">The Argon2id cost for new keys; <see cref="FileKeyVaultOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException"><paramref name="directory"/> or <paramref name="passphrase"/> is empty.</exception>
    public FileKeyVault(string directory, ReadOnlyMemory<char> passphrase, FileKeyVaultOptions? options = null)
        : this(directory, RequireNonEmpty(passphrase), options)
    {
    }

    /// <summary>A vault in <paramref name="directory"/> that asks <paramref name="passphrase"/> for each key's passphrase.</summary>
    /// <param name="directory">The vault directory; created (mode 0700 on Unix) when the first key is created.</param>
    /// <param name="passphrase">Called once per create or open, with the key name.</param>
    /// <param name="options">The Argon2id cost for new keys; <see cref="FileKeyVaultOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException"><paramref name="directory"/> is empty.</exception>
    public FileKeyVault(string directory, PassphraseProvider passphrase, FileKeyVaultOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(passphrase);
        DirectoryPath = Path.GetFullPath(directory);
        _passphrase = passphrase;
        Options = options ?? FileKeyVaultOptions.Default;
    }

    /// <summary>The absolute path of the vault directory.</summary>
    public string DirectoryPath { get; }

    /// <summary>The Argon2id cost used for keys this vault creates.</summary>
    public FileKeyVaultOptions Options { get; }

    /// <summary>The path of the file that holds (or would hold) the key <paramref name="name"/>.</summary>
    /// <exception cref="KeyStoreException"><see cref="KeyStoreErrorKind.InvalidName"/>.</exception>
    public string GetKeyFilePath(string name)
    {
        KeyName.Validate(name);
        return Path.Combine(DirectoryPath, name + FileExtension);
    }

    /// <inheritdoc />
    /// <remarks>Asks for the passphrase, generates a random seed, and writes the sealed file atomically with mode 0600.</remarks>
    public async ValueTask<ISigner> CreateAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = GetKeyFilePath(name);
        cancellationToken.ThrowIfCancellationRequested();
        if (File.Exists(path))
        {
            throw AlreadyExists(name);
        }

        EnsureDirectory();
        var (file, key) = SealNewKey(name);
        var written = false;
        try
        {
            await WriteNewFileAsync(name, path, file, cancellationToken).ConfigureAwait(false);
            written = true;
        }
        finally
        {
            // A key that never reached the disk must not live on in memory.
            if (!written)
            {
                key.Dispose();
            }
        }

        return InMemorySigner.FromKey(key, ownsKey: true);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Order: permissions (on the open handle), structure, then the passphrase is requested and the seed decrypted.
    /// Errors: <see cref="KeyStoreErrorKind.NotFound"/>, <see cref="KeyStoreErrorKind.InsecurePermissions"/>,
    /// <see cref="KeyStoreErrorKind.Corrupt"/>, <see cref="KeyStoreErrorKind.WrongPassphrase"/>.
    /// </remarks>
    public async ValueTask<ISigner> OpenAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = GetKeyFilePath(name);
        cancellationToken.ThrowIfCancellationRequested();
        var file = await ReadKeyFileAsync(name, path, cancellationToken).ConfigureAwait(false);
        VaultFile.Validate(file, name);
        cancellationToken.ThrowIfCancellationRequested();

        var passphrase = GetPassphraseUtf8(name);
        try
        {
            return InMemorySigner.FromKey(VaultFile.Open(file, name, passphrase), ownsKey: true);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(passphrase);
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        try
        {
            var path = GetKeyFilePath(name);
            cancellationToken.ThrowIfCancellationRequested();
            return ValueTask.FromResult(File.Exists(path));
        }
        catch (KeyStoreException exception)
        {
            return ValueTask.FromException<bool>(exception);
        }
        catch (OperationCanceledException exception)
        {
            return ValueTask.FromException<bool>(exception);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Overwrites the file's contents with zeros and flushes them to disk before unlinking it. On journaling,
    /// copy-on-write or flash storage the old bytes may survive elsewhere; the passphrase still protects them.
    /// </remarks>
    public async ValueTask DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = GetKeyFilePath(name);
        cancellationToken.ThrowIfCancellationRequested();
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException exception)
        {
            throw NotFound(name, exception);
        }
        catch (DirectoryNotFoundException exception)
        {
            throw NotFound(name, exception);
        }

        await using (stream.ConfigureAwait(false))
        {
            var zeros = new byte[4096];
            for (var remaining = stream.Length; remaining > 0; remaining -= zeros.Length)
            {
                await stream.WriteAsync(zeros.AsMemory(0, (int)Math.Min(remaining, zeros.Length)), cancellationToken).ConfigureAwait(false);
            }

            stream.Flush(flushToDisk: true);
        }

        File.Delete(path);
    }

    /// <summary>Shows the directory and the Argon2id cost for new keys; never a passphrase or key.</summary>
    public override string ToString() =>
        $"{nameof(FileKeyVault)}({DirectoryPath}, Argon2id m={Options.MemorySizeKib} KiB t={Options.Iterations} p={VaultFile.Parallelism})";

    private static PassphraseProvider RequireNonEmpty(ReadOnlyMemory<char> passphrase)
    {
        if (passphrase.IsEmpty)
        {
            throw new ArgumentException("The passphrase must not be empty.", nameof(passphrase));
        }

        return _ => passphrase;
    }

    private static KeyStoreException AlreadyExists(string name) =>
        new(KeyStoreErrorKind.AlreadyExists, $"A key named '{name}' already exists.");

    private static KeyStoreException NotFound(string name, Exception innerException) =>
        new(KeyStoreErrorKind.NotFound, $"No key is named '{name}'.", innerException);

    private static async ValueTask<byte[]> ReadKeyFileAsync(string name, string path, CancellationToken cancellationToken)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.Asynchronous);
        }
        catch (FileNotFoundException exception)
        {
            throw NotFound(name, exception);
        }
        catch (DirectoryNotFoundException exception)
        {
            throw NotFound(name, exception);
        }

        await using (stream.ConfigureAwait(false))
        {
            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(stream.SafeFileHandle);
                if ((mode & GroupOrOther) != 0)
                {
                    throw new KeyStoreException(
                        KeyStoreErrorKind.InsecurePermissions,
                        $"The key file for '{name}' has mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}; it must not grant group or other access (chmod 600).");
                }
            }

            // Read one byte more than a valid file so an over-long file is seen as such, without reading a huge one.
            var buffer = new byte[VaultFile.FileLength + 1];
            var read = await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            return buffer.AsSpan(0, read).ToArray();
        }
    }

    private (byte[] File, Key Key) SealNewKey(string name)
    {
        var passphrase = GetPassphraseUtf8(name);
        Span<byte> seed = stackalloc byte[VaultFile.SeedLength];
        try
        {
            RandomNumberGenerator.Fill(seed);
            var file = VaultFile.Seal(name, passphrase, Options.MemorySizeKib, Options.Iterations, seed);
            return (file, InMemorySigner.ImportSeed(seed));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
            CryptographicOperations.ZeroMemory(passphrase);
        }
    }

    // Pinned, so the garbage collector never leaves an unwiped copy behind when it compacts the heap.
    private byte[] GetPassphraseUtf8(string name)
    {
        var chars = _passphrase(name).Span;
        if (chars.IsEmpty)
        {
            throw new InvalidOperationException("The passphrase provider returned an empty passphrase.");
        }

        int length;
        try
        {
            length = StrictUtf8.GetByteCount(chars);
        }
        catch (EncoderFallbackException)
        {
            // Deliberately no inner exception: its message quotes the offending character and its position.
            throw new InvalidOperationException("The passphrase is not valid UTF-16: it contains an unpaired surrogate.");
        }

        var bytes = GC.AllocateUninitializedArray<byte>(length, pinned: true);
        StrictUtf8.GetBytes(chars, bytes);
        return bytes;
    }

    private void EnsureDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(DirectoryPath);
        }
        else
        {
            Directory.CreateDirectory(DirectoryPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static FileStreamOptions NewFileOptions()
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return options;
    }

    // File.Move(overwrite: false) is not atomic on Unix (.NET checks the target, then calls rename(2)), so the name is
    // claimed first with an exclusive create (O_CREAT|O_EXCL): of two concurrent creators exactly one wins and the other
    // gets AlreadyExists. The sealed contents go to a temporary file that then atomically replaces the empty placeholder,
    // so a reader sees no file, an empty one (Corrupt, only during creation) or the complete file, never a partial one.
    private async ValueTask WriteNewFileAsync(string name, string path, byte[] contents, CancellationToken cancellationToken)
    {
        try
        {
            await using (new FileStream(path, NewFileOptions()).ConfigureAwait(false))
            {
            }
        }
        catch (IOException exception) when (File.Exists(path))
        {
            throw new KeyStoreException(KeyStoreErrorKind.AlreadyExists, $"A key named '{name}' already exists.", exception);
        }

        // A leading dot and a random suffix: never a valid key name, never a collision.
        var temporaryPath = Path.Combine(DirectoryPath, $".{name}.{Guid.NewGuid():N}.tmp");
        var moved = false;
        try
        {
            var stream = new FileStream(temporaryPath, NewFileOptions());
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(contents, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporaryPath, path, overwrite: true);
            moved = true;
        }
        finally
        {
            File.Delete(temporaryPath);
            if (!moved)
            {
                File.Delete(path);
            }
        }
    }
}
