import { AdiError } from '../../errors.js';
import type { Handler } from '../context.js';

export const handleSudoRun: Handler<'SudoRun'> = () => {
  throw new AdiError('NOT_IMPLEMENTED', 'SudoRun is not implemented yet.');
};
