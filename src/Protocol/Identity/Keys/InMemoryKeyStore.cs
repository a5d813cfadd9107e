using NSec.Cryptography;

namespace SecureChannels.Protocol.Identity.Keys;

/// <summary>
/// Named Ed25519 keys held only in process memory, for tests and for short-lived agents. Nothing is persisted.
/// </summary>
/// <remarks>
/// The store owns its keys. Signers returned by <see cref="CreateAsync"/> and <see cref="OpenAsync"/> borrow them:
/// disposing a signer leaves the key in the store, while <see cref="DeleteAsync"/> and <see cref="Dispose"/> wipe the
/// key and make every signer that borrowed it throw <see cref="ObjectDisposedException"/>. Safe for concurrent use.
/// </remarks>
public sealed class InMemoryKeyStore : IKeyStore, IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Key> _keys = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <inheritdoc />
    public ValueTask<ISigner> CreateAsync(string name, CancellationToken cancellationToken = default)
    {
        KeyName.Validate(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_keys.ContainsKey(name))
            {
                throw new KeyStoreException(KeyStoreErrorKind.AlreadyExists, $"A key named '{name}' already exists.");
            }

            var key = Key.Create(SignatureAlgorithm.Ed25519);
            _keys.Add(name, key);
            return ValueTask.FromResult<ISigner>(InMemorySigner.FromKey(key, ownsKey: false));
        }
    }

    /// <inheritdoc />
    public ValueTask<ISigner> OpenAsync(string name, CancellationToken cancellationToken = default)
    {
        KeyName.Validate(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_keys.TryGetValue(name, out var key))
            {
                throw new KeyStoreException(KeyStoreErrorKind.NotFound, $"No key is named '{name}'.");
            }

            return ValueTask.FromResult<ISigner>(InMemorySigner.FromKey(key, ownsKey: false));
        }
    }

    /// <inheritdoc />
    public ValueTask<bool> ExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        KeyName.Validate(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return ValueTask.FromResult(_keys.ContainsKey(name));
        }
    }

    /// <inheritdoc />
    public ValueTask DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        KeyName.Validate(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_keys.Remove(name, out var key))
            {
                throw new KeyStoreException(KeyStoreErrorKind.NotFound, $"No key is named '{name}'.");
            }

            key.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Shows how many keys the store holds; never key material.</summary>
    public override string ToString()
    {
        lock (_lock)
        {
            return $"{nameof(InMemoryKeyStore)}({_keys.Count} keys)";
        }
    }

    /// <summary>Wipes every key. Signers that borrowed them stop working.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var key in _keys.Values)
            {
                key.Dispose();
            }

            _keys.Clear();
        }
    }
}
