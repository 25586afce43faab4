// The safetensors format (format.ts) and its files (file.ts).
export * from './format';
export * from './file';
